"""The ``umm`` command refuses bad arguments before any work and writes nothing then."""
from __future__ import annotations

import pytest

import umm_helpers.tools.notebooks as notebooks
from umm_helpers.tools.cli import main


@pytest.mark.parametrize("command", ["run", "compare"])
def test_an_output_folder_that_cannot_be_written_fails_before_training(registered, tmp_path,
                                                                        capsys, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = [command, "--dataset", "tiny", "--epochs", "1", "--out", str(blocker)]
    argv += ["--method", "unimodal:image"] if command == "run" else ["--methods", "joint"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and "--out" in err
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing cached


def test_course_only_matching_nothing_fails_and_writes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_first.ipynb").write_text("{}")
    monkeypatch.setattr(notebooks, "repo_root", lambda: tmp_path)
    assert main(["course", "--only", "no-such-notebook"]) == 2
    err = capsys.readouterr().err
    assert "matches no notebook" in err and "00_first.ipynb" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks"]  # no build/ written
