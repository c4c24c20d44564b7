import json

import numpy as np
import pytest
import tifffile
import torch
from .layouts import MICRO_COUNTS, write_drone, write_microscopy
from PIL import Image

from rawdrift.data.base import RawDataset, stratified_kfold
from rawdrift.data.real import (
    MICROSCOPY_CLASSES,
    RawDrone,
    RawMicroscopy,
    available_intensities,
    read_label_file,
    scale_folder,
)
from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY


def test_scale_folder():
    assert scale_folder(1.0) == "raw_scale100" and scale_folder(0.01) == "raw_scale001"
    assert scale_folder(0.25) == "raw_scale025" and scale_folder(1) == "raw_scale100"
    with pytest.raises(ValueError, match=r"intensity: expected a multiple of 0.01 in \(0, 1\]"):
        scale_folder(0.003)
    with pytest.raises(ValueError, match=r"intensity: expected a multiple of 0.01 in \(0, 1\]"):
        scale_folder(2.0)
    with pytest.raises(ValueError, match="intensity: expected a number"):
        scale_folder("1.0")


def test_microscopy_loads(microscopy_root):
    root, truth = microscopy_root
    ds = RawMicroscopy(root)
    assert isinstance(ds, RawDataset) and ds.task == "classification" and ds.camera is RAW_MICROSCOPY
    assert ds.classes == ("BAS", "LYT", "NGS")  # MYB (2 samples) dropped, fixed order kept
    assert ds.dropped_classes == ("MYB",)
    assert len(ds) == 16 and ds.targets.tolist().count(ds.classes.index("LYT")) == 6
    raw, target, meta = ds[3]
    assert raw.shape == (1, 8, 8) and raw.dtype == torch.float32
    counts = tifffile.imread(meta["file"])
    assert torch.equal(raw[0], torch.from_numpy(counts.astype(np.float32) / 65535))
    assert ds.classes[target] == truth[meta["file"].split("/")[-1][:-5]] == meta["code"]
    assert meta["intensity"] == 1.0 and meta["index"] == 3
    s = ds.summary()
    assert s["per_class"] == {"BAS": 5, "LYT": 6, "NGS": 5} and s["intensities_available"] == [0.1, 1.0]
    assert s["paper_classes"] is False and s["dropped_classes"] == {"MYB": 2}
    folds = stratified_kfold(ds.targets, k=5)
    assert len(folds) == 5


def test_microscopy_intensity_tif_extension_and_top_folder(tmp_path):
    write_microscopy(tmp_path / "Raw-Microscopy-v1", ext=".tif")
    ds = RawMicroscopy(tmp_path, intensity=0.1)
    assert len(ds) == 16 and ds.image_dir.name == "raw_scale010" and ds.files[0].suffix == ".tif"
    assert ds[0][2]["intensity"] == 0.1
    with pytest.raises(ValueError, match=r"intensity: no folder .*raw_scale050.*available intensities: 0.1, 1.0"):
        RawMicroscopy(tmp_path, intensity=0.5)


def test_microscopy_paper_classes(tmp_path):
    base = tmp_path / "microscopy"
    (base / "labels").mkdir(parents=True)
    (base / "images" / "raw_scale100").mkdir(parents=True)
    lines = []
    for code in ("BAS", "EBO", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC", "PMO"):
        n = 1 if code in ("EBO", "PMO") else 5
        for i in range(n):
            lines.append(f"{code}{i} {code}")
            tifffile.imwrite(base / "images" / "raw_scale100" / f"{code}{i}.tiff", np.zeros((4, 4), np.uint16))
    (base / "labels" / "Ma190c_annotations.dat").write_text("\n".join(lines))
    ds = RawMicroscopy(tmp_path)
    assert ds.classes == MICROSCOPY_CLASSES and ds.summary()["paper_classes"] is True


def test_microscopy_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        RawMicroscopy(tmp_path)
    msg = str(err.value)
    assert "data not found under" in msg and "microscopy/labels/Ma190c_annotations.dat" in msg
    assert "raw_scale100" in msg and "zenodo.org/record/5235536" in msg and "download=True" in msg


def test_microscopy_label_names_missing_image(microscopy_root):
    root, _ = microscopy_root
    (root / "microscopy" / "images" / "raw_scale100" / "Ma190c_BAS_2.tiff").unlink()
    with pytest.raises(FileNotFoundError, match=r"Ma190c_annotations.dat names image 'Ma190c_BAS_2'"):
        RawMicroscopy(root)


def test_microscopy_bad_label_lines(microscopy_root):
    root, _ = microscopy_root
    labels = root / "microscopy" / "labels" / "Ma190c_annotations.dat"
    labels.write_text("a BAS\nb XYZ\n")
    with pytest.raises(ValueError, match=r"Ma190c_annotations.dat, line 2: unknown class code 'XYZ'"):
        read_label_file(labels)
    labels.write_text("a BAS extra\n")
    with pytest.raises(ValueError, match=r"line 1: expected '<file name> <class code>'"):
        read_label_file(labels)
    labels.write_text("\n")
    with pytest.raises(ValueError, match="holds no annotations"):
        read_label_file(labels)


def test_microscopy_truncated_and_8bit_tiffs(microscopy_root):
    root, _ = microscopy_root
    ds = RawMicroscopy(root)
    bad = ds.files[0]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{bad.name}: cannot read this TIFF \(truncated or damaged\?\)"):
        ds[0]
    tifffile.imwrite(bad, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=rf"{bad.name}: expected 16-bit raw data \(uint16\), got 8-bit uint8"):
        ds[0]
    tifffile.imwrite(bad, np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(ValueError, match=rf"{bad.name}: expected a single-channel Bayer mosaic"):
        ds[0]


def test_drone_tiles(drone_root):
    root, cars = drone_root
    ds = RawDrone(root, tile_size=8)
    assert isinstance(ds, RawDataset) and ds.task == "segmentation" and ds.camera is RAW_DRONE
    assert len(ds) == len(cars) == 3 and ds.targets.tolist() == [1, 1, 1]
    frames = sorted((root / "drone" / "images_full" / "raw_scale100").iterdir())
    masks = sorted((root / "drone" / "masks_full").iterdir())
    for i, (f, r, c) in enumerate(cars):
        raw, mask, meta = ds[i]
        assert raw.shape == mask.shape == (1, 8, 8) and mask.dtype == torch.float32
        assert (meta["row"], meta["col"], meta["frame"]) == (r * 8, c * 8, frames[f].stem)
        full = tifffile.imread(frames[f])[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8]
        assert torch.equal(raw[0], torch.from_numpy(full.astype(np.float32) / 65535))
        full_mask = np.asarray(Image.open(masks[f]))[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8, 0] > 0
        assert torch.equal(mask[0], torch.from_numpy(full_mask.astype(np.float32)))
    # tile files in the authors' layout and naming
    assert sorted(p.name for p in ds.tile_dir.iterdir()) == ["00_00000.tif", "00_00001.tif", "01_00000.tif"]
    assert sorted(p.name for p in ds.mask_dir.iterdir()) == ["00_00000.png", "00_00001.png", "01_00000.png"]
    assert not [p for p in ds.root.rglob("*.part")]
    # a second intensity reuses the mask tiles and selects the same tiles
    low = RawDrone(root, intensity=0.1, tile_size=8)
    assert [m["tile"] for *_, m in (low[i] for i in range(3))] == [ds[i][2]["tile"] for i in range(3)]
    assert not torch.equal(low[0][0], ds[0][0]) and torch.equal(low[0][1], ds[0][1])
    s = ds.summary()
    assert s["tiles"] == 3 and s["frames"] == 2 and s["intensities_available"] == [0.1, 1.0]


def test_drone_reads_existing_tiles_without_frames(drone_root):
    root, _ = drone_root
    RawDrone(root, tile_size=8)
    import shutil

    shutil.rmtree(root / "drone" / "images_full")
    shutil.rmtree(root / "drone" / "masks_full")
    assert len(RawDrone(root, tile_size=8)) == 3


def test_drone_mask_of_wrong_size(drone_root):
    root, _ = drone_root
    mask = root / "drone" / "masks_full" / "DJI_0001.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    with pytest.raises(ValueError, match=r"DJI_0001.png: mask is 10x10, but frame .*DJI_0001.tif is 26x36"):
        RawDrone(root, tile_size=8)
    # nothing that looks finished was left behind
    assert not (root / "drone" / "images_tiles_8").exists() and not (root / "drone" / "masks_tiles_8").exists()


def test_drone_frame_without_mask_and_missing_data(drone_root, tmp_path_factory):
    root, _ = drone_root
    (root / "drone" / "masks_full" / "DJI_0001.png").unlink()
    with pytest.raises(ValueError, match=r"DJI_0001.tif: found no mask for this frame"):
        RawDrone(root, tile_size=8)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match=r"(?s)raw-drone: data not found under .*drone/masks_full"):
        RawDrone(empty)


def test_drone_8bit_frame(drone_root):
    root, _ = drone_root
    frame = root / "drone" / "images_full" / "raw_scale100" / "DJI_0000.tif"
    tifffile.imwrite(frame, np.zeros((26, 36), np.uint8))
    with pytest.raises(ValueError, match=r"DJI_0000.tif: expected 16-bit raw data"):
        RawDrone(root, tile_size=8)


def test_drone_extra_top_folder_and_intensity_error(tmp_path):
    write_drone(tmp_path / "data")
    assert len(RawDrone(tmp_path, tile_size=8)) == 3
    with pytest.raises(ValueError, match="available intensities: 0.1, 1.0"):
        RawDrone(tmp_path, intensity=0.75, tile_size=8)
    assert available_intensities(tmp_path / "nothing") == ()


def test_drone_interrupted_tiling_leaves_no_tile_folder(drone_root):
    root, _ = drone_root
    frame = root / "drone" / "images_full" / "raw_scale100" / "DJI_0001.tif"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) - 200])  # header intact, pixel data cut short
    with pytest.raises(ValueError, match=r"DJI_0001.tif: cannot read this TIFF \(truncated or damaged\?\)"):
        RawDrone(root, tile_size=8)
    tiles = root / "drone" / "images_tiles_8"
    assert not (tiles / "raw_scale100").exists() and not list(tiles.glob("*.part"))
    frame.write_bytes(data)  # repaired: the next run completes
    assert len(RawDrone(root, tile_size=8)) == 3
