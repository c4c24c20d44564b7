import os
import subprocess
import sys
from pathlib import Path

import pytest

from rawdrift.bench import bench_isp, format_rows
from rawdrift.cli import main


def test_bench_isp_rows():
    rows = bench_isp(batch=2, size=16, configs=["bi,s,ga"], repeat=1)
    assert rows[0]["config"] == "bi,s,ga" and rows[0]["numpy"] > 0 and rows[0]["torch_cpu"] > 0
    assert "speedup_cpu" in format_rows(rows)
    assert rows[0]["torch_cpu_ops"] > 0  # the op-by-op torch path, timed beside the compiled one


def test_bench_without_fused_kernels_has_one_cpu_column(monkeypatch):
    monkeypatch.setenv("RAWDRIFT_FUSED", "0")
    rows = bench_isp(batch=2, size=16, configs=["bi,s,ga"], repeat=1)
    assert "torch_cpu" in rows[0] and "torch_cpu_ops" not in rows[0]


def test_bench_cli(capsys):
    assert main(["bench", "isp", "--batch", "2", "--size", "16", "--configs", "bi,u,me", "--repeat", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "bi,u,me" in out and "speed-up torch cpu_ops / numpy" in out and "numba kernels" in out


def test_bench_config_error():
    with pytest.raises(ValueError, match="unknown demosaicing code"):
        bench_isp(batch=1, size=16, configs=["zz,s,ga"])


GPU_SH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"


def _gpu_sh(*args, tmp_path):
    env = {**os.environ, "PY": sys.executable, "DEVICE": "cpu", "PRESET": "ci"}
    return subprocess.run(["bash", str(GPU_SH), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_gpu_script_env_step(tmp_path):
    """The GPU runbook's env step runs from source and logs what it found, with its exit status.

    OUT is relative here: it is taken from the caller's folder, not the repository's."""
    r = _gpu_sh("run", "out", "env", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "out" / "00-env.log").read_text()
    assert "torch" in log and "rawdrift" in log and "== env: exit 0" in log
    assert "all steps passed" in r.stdout


def test_gpu_script_rejects_unknown_step_and_missing_out(tmp_path):
    r = _gpu_sh("run", str(tmp_path / "out"), "benhc", tmp_path=tmp_path)
    assert r.returncode == 2 and "unknown step: benhc" in r.stderr and "bench" in r.stderr
    assert _gpu_sh("run", tmp_path=tmp_path).returncode == 2
    assert _gpu_sh(tmp_path=tmp_path).returncode == 2
