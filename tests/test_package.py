import subprocess
import sys
import time

import pytest

import rawdrift
from rawdrift.cli import main
from rawdrift.presets import PRESETS, get_preset


def test_version():
    assert rawdrift.__version__.count(".") == 2


def test_import_is_fast():
    code = "import time; t=time.perf_counter(); import rawdrift; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 2.0


def test_presets_and_overrides(monkeypatch):
    monkeypatch.setenv("RAWDRIFT_PRESET", "ci")
    assert get_preset().name == "ci"
    assert get_preset("paper").epochs == 100 and PRESETS["paper"].lr_cls == 1e-4
    assert get_preset("ci", epochs=5).epochs == 5
    with pytest.raises(ValueError, match="unknown preset fields"):
        get_preset("ci", epoch=5)
    with pytest.raises(ValueError, match="preset: expected one of"):
        get_preset("huge")
    monkeypatch.setenv("RAWDRIFT_PRESET", "nope")
    with pytest.raises(ValueError, match="RAWDRIFT_PRESET"):
        get_preset()


def test_cli_help_and_presets(capsys):
    assert main(["presets"]) == 0
    assert "paper" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "data" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "rawdrift.cli", "data", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "synthetic-microscopy" in out.stdout
