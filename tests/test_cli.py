"""The ``umm data`` commands."""
import json
import shutil

from umm_helpers.cli import main
from umm_helpers.config import data_dir


def test_data_verify_and_info(capsys):
    assert main(["data", "verify", "av-digits"]) == 0
    assert "all data files match" in capsys.readouterr().out
    assert main(["data", "info", "av-digits"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sizes"] == {"train": 1078, "validation": 269, "test": 450}


def test_data_verify_reports_corruption(tmp_path, capsys):
    shutil.copytree(data_dir(), tmp_path / "d")
    (tmp_path / "d" / "av-digits" / "train.parquet").write_bytes(b"oops")
    assert main(["data", "verify", "av-digits", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "train.parquet is corrupt" in err and "make data" in err


def test_unknown_method_is_a_clear_error(capsys):
    assert main(["run", "--method", "nope", "--dataset", "av-digits"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
