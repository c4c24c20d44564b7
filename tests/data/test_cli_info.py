import json

import numpy as np
import pytest
from .layouts import write_drone, write_microscopy

from rawdrift.cli import main
from rawdrift.raw.dng import write_dng


def test_info_on_dng(tmp_path, capsys):
    path = write_dng(tmp_path / "a.dng", np.full((24, 24), 4000, np.uint16), pattern="BGGR", black_level=512,
                     white_balance=(2, 1, 1.5), camera_model="My Cam")
    assert main(["data", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "model: My Cam" in out and "pattern: RGGB" in out and "source_pattern: BGGR" in out
    assert main(["data", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["file"]
    assert info["black_level_counts"] == [512.0] * 4 and info["white_balance"] == [2.0, 1.0, 1.5]
    assert (info["height"], info["width"]) == (22, 22)


def test_info_on_dataset_folder(tmp_path, capsys):
    write_microscopy(tmp_path)
    write_drone(tmp_path / "extra")
    assert main(["data", "info", str(tmp_path), "--json", "--tile-size", "8"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["raw-microscopy"]["per_class"] == {"BAS": 5, "LYT": 6, "NGS": 5}
    assert info["raw-microscopy"]["intensities_available"] == [0.1, 1.0]
    assert info["raw-drone"]["tiles"] == 3 and info["raw-drone"]["frames"] == 2
    assert main(["data", "info", str(tmp_path), "--intensity", "0.5", "--tile-size", "8"]) == 0
    assert "available intensities: 0.1, 1.0" in capsys.readouterr().out


def test_info_errors(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "holds neither dataset" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("hi")
    assert main(["data", "info", str(tmp_path / "x.txt")]) == 2
    assert "not a raw file rawpy/LibRaw can read" in capsys.readouterr().err


def test_download_command_reports_unreachable(monkeypatch, tmp_path, capsys):
    def unreachable(dataset, root, **kw):
        raise ConnectionError("cannot reach the Zenodo record")

    monkeypatch.setattr("rawdrift.data.download.download_dataset", unreachable)
    assert main(["data", "download", "raw-drone", "--root", str(tmp_path)]) == 2
    assert "cannot reach the Zenodo record" in capsys.readouterr().err
