"""The ``umm`` command: data, run, compare; a command that fails exits non-zero."""
import json
import shutil

import pytest

from umm_helpers.settings import data_dir
from umm_helpers.tools.cli import main, result_path


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


def test_run_writes_result(registered, tmp_path, capsys):
    assert main(["run", "--dataset", "tiny", "--method", "unimodal:image", "--seed", "1",
                 "--epochs", "1"]) == 0
    path = result_path("tiny", "unimodal:image", 1)
    assert path == tmp_path / "runs" / "tiny" / "unimodal_image" / "seed1" / "result.json"
    result = json.loads(path.read_text())
    assert result["method"] == "unimodal:image" and result["config"]["seed"] == 1
    assert result["config"]["epochs"] == 1
    assert "unimodal:image seed 1: full" in capsys.readouterr().out


def test_compare_prints_the_table(registered, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compare", "--dataset", "tiny", "--methods", "joint", "--seeds", "0,1",
                 "--epochs", "1", "--out", str(out)]) == 0
    assert "| joint |" in capsys.readouterr().out and (out / "compare.md").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "--dataset", "tiny", "--method", "joint", "--epochs", "0"], "TrainConfig.epochs = 0"),
    (["compare", "--dataset", "tiny", "--seeds", ""], "seeds must be a comma list"),
    (["compare", "--dataset", "tiny", "--methods", "joint,nope"], "unknown method 'nope'"),
    (["compare", "--dataset", "tiny", "--jobs", "0"], "jobs = 0 is invalid"),
    (["run", "--dataset", "nope", "--method", "joint"], "nope"),
    (["run", "--dataset", "tiny", "--method", "unimodal:image", "--epochs", "0"],
     "TrainConfig.epochs = 0 is invalid: expected an integer >= 1"),
    (["compare", "--dataset", "tiny", "--methods", "joint", "--epochs", "0"],
     "TrainConfig.epochs = 0 is invalid"),
    (["compare", "--dataset", "tiny", "--seeds", " , "], "seeds must be a comma list"),
])
def test_failing_commands_exit_non_zero_and_say_why(registered, tmp_path, capsys, argv,
                                                    message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any work
