import numpy as np
import pytest
import torch

from rawdrift.cli import main
from rawdrift.data import get_dataset
from rawdrift.data.base import RawDataset
from rawdrift.data.synthetic import (
    MICROSCOPY_CLASSES, MICROSCOPY_PROPORTIONS, VERSION, SyntheticDrone, SyntheticMicroscopy, class_counts,
)
from rawdrift.isp.camera import Camera
from rawdrift.raw.preview import contact_sheet, quick_view


@pytest.fixture(scope="module")
def micro():
    return SyntheticMicroscopy(n=72, size=64, seed=0)


@pytest.fixture(scope="module")
def drone():
    return SyntheticDrone(n=24, size=64, seed=0)


def test_microscopy_item_contract(micro):
    assert isinstance(micro, RawDataset) and len(micro) == 72
    raw, label, meta = micro[5]
    assert raw.shape == (1, 64, 64) and raw.dtype == torch.float32
    assert 0 <= raw.min() and raw.max() <= 1
    assert isinstance(label, int) and meta["class_name"] == MICROSCOPY_CLASSES[label]
    assert meta["index"] == 5 and meta["intensity"] == 1.0 and meta["seed"] == 0
    assert micro.task == "classification" and micro.classes == MICROSCOPY_CLASSES
    assert isinstance(micro.camera, Camera)
    assert micro.targets.shape == (72,)
    # raw values are 16-bit counts / 65535
    counts = micro.raw_tensor([0, 1]).double() * 65535
    assert torch.allclose(counts, counts.round(), atol=1e-3)


def test_class_proportions():
    counts = class_counts(940)
    assert counts.sum() == 940
    assert np.allclose(counts / 940, MICROSCOPY_PROPORTIONS, atol=0.002)
    small = class_counts(72)
    assert small.min() >= 3 and small.sum() == 72
    ds = SyntheticMicroscopy(n=200, size=32, cache=False)
    assert np.bincount(ds.targets, minlength=9).tolist() == class_counts(200).tolist()


def test_determinism_and_seed(micro):
    again = SyntheticMicroscopy(n=72, size=64, seed=0, cache=False)
    assert torch.equal(again.raw_tensor(), micro.raw_tensor())
    assert np.array_equal(again.targets, micro.targets)
    other = SyntheticMicroscopy(n=72, size=64, seed=1, cache=False)
    assert not torch.equal(other.raw_tensor(), micro.raw_tensor())


def test_cache_hit_miss_key_and_atomic_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RAWDRIFT_CACHE", str(tmp_path))
    a = SyntheticDrone(n=3, size=32, seed=4)
    assert not a.cache_hit and a.cache_path.exists() and a.cache_path.parent.name == "synthetic"
    b = SyntheticDrone(n=3, size=32, seed=4)
    assert b.cache_hit and b.cache_key() == a.cache_key()
    assert torch.equal(a.raw_tensor(), b.raw_tensor())
    assert torch.equal(a[1][1], b[1][1])
    keys = {SyntheticDrone(n=3, size=32, seed=s, intensity=i, cache=False).cache_key()
            for s, i in [(4, 1.0), (5, 1.0), (4, 0.5)]}
    assert len(keys) == 3
    assert str(VERSION) in str(a.params()["version"])
    # only finished files, no temporary leftovers
    assert [p.suffix for p in (tmp_path / "synthetic").iterdir()] == [".npz"]
    c = SyntheticDrone(n=3, size=32, seed=4, cache=False)
    assert not c.cache_hit


def test_version_is_in_key(monkeypatch):
    import rawdrift.data.synthetic as syn

    k1 = SyntheticDrone(n=2, size=16, cache=False).cache_key()
    monkeypatch.setattr(syn, "VERSION", syn.VERSION + 1)
    assert SyntheticDrone(n=2, size=16, cache=False).cache_key() != k1


def test_drone_masks_exact_and_binary(drone):
    raw, mask, meta = drone[0]
    assert raw.shape == (1, 64, 64) and mask.shape == (1, 64, 64) and mask.dtype == torch.float32
    masks = torch.stack([drone[i][1] for i in range(len(drone))])
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    counts = np.array([drone[i][2]["car_count"] for i in range(len(drone))])
    assert (counts > 0).mean() >= 0.7  # most patches hold a car
    assert np.array_equal(drone.targets, (masks.flatten(1).amax(1) > 0).long().numpy())
    assert drone.task == "segmentation"


def test_drone_mask_area_matches_car_geometry():
    ds = SyntheticDrone(n=16, size=256, cache=False)
    scene = ds._draw_scenes(ds._scene_rng())
    # pick a car fully inside the patch with no neighbour within reach: its mask area is L*W (+- perimeter)
    for i in range(ds.n):
        act = np.flatnonzero(scene["active"][i])
        if len(act) != 1:
            continue
        cx, cy = scene["cars"][i, act[0], :2]
        if not (50 < cx < 206 and 50 < cy < 206):
            continue
        L, W = np.array([75.0, 30.0]) * scene["size_jit"][i, act[0]]
        area = ds[i][1].sum().item()
        assert abs(area - L * W) < 2 * (L + W)
        return
    pytest.skip("no isolated car in this sample")


def test_intensity_variants_share_scenes():
    hi = SyntheticMicroscopy(n=9, size=32, intensity=1.0, cache=False)
    lo = SyntheticMicroscopy(n=9, size=32, intensity=0.01, cache=False)
    assert torch.equal(hi.radiance([0, 3]), lo.radiance([0, 3]))
    assert np.array_equal(hi.targets, lo.targets)
    bl = hi.sensor.black_level_dn / 65535
    a, b = hi.raw_tensor().double() - bl, lo.raw_tensor().double() - bl
    assert (b.mean() / a.mean()).item() == pytest.approx(0.01, rel=0.05)
    # noise relative to signal grows at low intensity (shot noise ~ sqrt of the photon count)
    rel_hi = (a - hi.sensor.expected_mean(hi.radiance(range(9))) + bl).std() / a.mean()
    rel_lo = (b - lo.sensor.expected_mean(lo.radiance(range(9))) + bl).std() / b.mean()
    assert rel_lo / rel_hi > 5


def test_raw_matches_sensor_model_on_radiance():
    ds = SyntheticDrone(n=4, size=32, intensity=0.1, cache=False)
    rad = ds.radiance(range(4))
    mean = ds.sensor.expected_mean(rad, 0.1)
    var = ds.sensor.expected_variance(rad, 0.1)
    z = (ds.raw_tensor().double() - mean) / var.sqrt()
    assert abs(z.mean().item()) < 0.1 and z.std().item() == pytest.approx(1.0, abs=0.1)


def test_classes_differ_in_nucleus_statistics():
    ds = SyntheticMicroscopy(n=180, size=64, cache=False)
    area = np.array([ds[i][2]["nucleus_area"] for i in range(len(ds))])
    y = ds.targets
    lyt, mon = area[y == MICROSCOPY_CLASSES.index("LYT")], area[y == MICROSCOPY_CLASSES.index("MON")]
    ksc = area[y == MICROSCOPY_CLASSES.index("KSC")]
    # small lymphocyte nuclei, larger monocyte nuclei (overlapping: not a trivial cue)
    assert np.median(mon) > 1.15 * np.median(lyt)
    assert np.median(ksc) > np.median(mon)
    # colour: eosinophil granules absorb green/blue -> redder than lymphocytes in the noise-free radiance
    rad = ds.radiance(range(len(ds)))
    rg = (rad[:, 0] / rad[:, 1]).flatten(1).mean(1).numpy()
    eos, lyt_rg = rg[y == MICROSCOPY_CLASSES.index("EOS")], rg[y == MICROSCOPY_CLASSES.index("LYT")]
    assert eos.mean() > lyt_rg.mean()


def test_errors_name_arguments():
    with pytest.raises(ValueError, match="size: expected an even integer"):
        SyntheticMicroscopy(n=2, size=33, cache=False)
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        SyntheticDrone(n=0, size=32, cache=False)
    with pytest.raises(ValueError, match="intensity"):
        SyntheticDrone(n=1, size=32, intensity=0.0, cache=False)
    with pytest.raises(ValueError, match="intensity"):
        SyntheticDrone(n=1, size=32, intensity=float("nan"), cache=False)
    with pytest.raises(ValueError, match="name: expected one of"):
        get_dataset("imagenet")
    with pytest.raises(ValueError, match="seed"):
        SyntheticDrone(n=1, size=32, seed=-1, cache=False)
    ds = SyntheticDrone(n=2, size=16, cache=False)
    with pytest.raises(IndexError, match="index"):
        ds[2]
    with pytest.raises(ValueError, match="indices"):
        ds.radiance([5])


def test_registry_uses_preset():
    ds = get_dataset("synthetic-microscopy", preset="ci")
    assert len(ds) == 72 and ds[0][0].shape == (1, 64, 64)
    ds = get_dataset("synthetic-drone", preset="ci", n=3, intensity=0.5, seed=2)
    assert len(ds) == 3 and ds.intensity == 0.5 and ds.seed == 2


def test_quick_view_and_contact_sheet(tmp_path, micro):
    rgb = quick_view(micro.raw_tensor([0, 1]), micro.camera)
    assert rgb.shape == (2, 3, 64, 64) and 0 <= rgb.min() and rgb.max() <= 1
    # background (the median pixel) is nearly white and neutral after white balance
    bg = quick_view(micro.raw_tensor(range(16)), micro.camera).transpose(0, 1).flatten(1).median(dim=1).values
    assert bg.min() > 0.75 and (bg.max() - bg.min()) < 0.1
    fig = contact_sheet(micro, n=4, path=tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_preview_writes_png(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["data", "preview", "--dataset", "synthetic-drone", "--preset", "ci", "--intensity", "0.01",
                 "-n", "4", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out
    assert main(["data", "preview", "--dataset", "nope", "--out", str(out)]) == 2


def test_intensity_ladder_and_indices(tmp_path):
    import matplotlib.pyplot as plt

    from rawdrift.raw.preview import intensity_ladder

    ds = SyntheticMicroscopy(n=9, size=32, cache=False)
    fig, raws = intensity_ladder(ds, 2, intensities=[1.0, 0.01], path=tmp_path / "l.png")
    assert raws.shape == (2, 1, 32, 32) and (tmp_path / "l.png").exists()
    assert raws[1].mean() < raws[0].mean()
    plt.close(fig)
    with pytest.raises(ValueError, match="intensities"):
        intensity_ladder(ds, 0, intensities=[2.0])
    fig = contact_sheet(ds, indices=[3, 1])
    assert len([a for a in fig.axes if a.images]) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="indices"):
        contact_sheet(ds, indices=[])


def test_corrupt_cache_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("RAWDRIFT_CACHE", str(tmp_path))
    a = SyntheticMicroscopy(n=2, size=16)
    a.cache_path.write_bytes(b"not an npz")
    b = SyntheticMicroscopy(n=2, size=16)
    assert not b.cache_hit and torch.equal(a.raw_tensor(), b.raw_tensor())
    assert SyntheticMicroscopy(n=2, size=16).cache_hit
    assert SyntheticMicroscopy(n=2, size=16, intensity=np.float32(0.5), cache=False).intensity == 0.5


def test_ambiguity_keeps_labels_and_swaps_morphology():
    clean = SyntheticMicroscopy(n=90, size=16, ambiguity=0.0, cache=False)
    assert all(clean[i][2]["morphology"] == clean[i][2]["class_name"] for i in range(90))
    mixed = SyntheticMicroscopy(n=90, size=16, ambiguity=0.5, cache=False)
    assert np.array_equal(mixed.targets, clean.targets)
    swapped = sum(mixed[i][2]["morphology"] != mixed[i][2]["class_name"] for i in range(90))
    assert 25 <= swapped <= 65
    assert mixed.cache_key() != clean.cache_key()
    with pytest.raises(ValueError, match="ambiguity"):
        SyntheticMicroscopy(n=2, size=16, ambiguity=1.5, cache=False)


def test_microscopy_uniform_proportions():
    from rawdrift.data import get_dataset

    ds = get_dataset("synthetic-microscopy", preset="ci", n=27, size=16, cache=False, proportions="uniform")
    assert np.bincount(ds.targets).tolist() == [3] * 9
    assert "proportions" in ds.params()
    assert "proportions" not in get_dataset("synthetic-microscopy", preset="ci", n=9, size=16, cache=False).params()


def test_microscopy_bad_proportions():
    from rawdrift.data import get_dataset

    with pytest.raises(ValueError, match="proportions: expected 9 positive finite weights"):
        get_dataset("synthetic-microscopy", preset="ci", n=9, size=16, cache=False, proportions=[1.0, 2.0])
