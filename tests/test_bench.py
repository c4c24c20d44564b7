import pytest

from rawdrift.bench import bench_isp, format_rows
from rawdrift.cli import main


def test_bench_isp_rows():
    rows = bench_isp(batch=2, size=16, configs=["bi,s,ga"], repeat=1)
    assert rows[0]["config"] == "bi,s,ga" and rows[0]["numpy"] > 0 and rows[0]["torch_cpu"] > 0
    assert "speedup_cpu" in format_rows(rows)


def test_bench_cli(capsys):
    assert main(["bench", "isp", "--batch", "2", "--size", "16", "--configs", "bi,u,me", "--repeat", "1", "--device", "cpu"]) == 0
    assert "bi,u,me" in capsys.readouterr().out


def test_bench_config_error():
    with pytest.raises(ValueError, match="unknown demosaicing code"):
        bench_isp(batch=1, size=16, configs=["zz,s,ga"])
