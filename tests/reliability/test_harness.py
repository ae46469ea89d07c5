"""Tests and tools that do not depend on order, load or the network: the browser test prepares
its own runs, and the course runner starts kernels without the unencrypted-TCP warning."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat

from umm_helpers.tools import notebooks

BROWSER_TEST = Path(__file__).resolve().parents[1] / "browser" / "test_explorer_in_jupyterlab.py"


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def test_the_browser_test_prepares_its_runs_before_jupyterlab_starts():
    """Run alone, the browser test must not wait for another test to fill the run cache: its
    fixture executes the notebook headless into the lab's run cache, then starts the lab."""
    tree = ast.parse(BROWSER_TEST.read_text())
    lab = _function(tree, "lab")
    calls = [n for n in ast.walk(lab) if isinstance(n, ast.Call)]
    names = [ast.unparse(c.func) for c in calls]
    assert "_prepare_runs" in names and "subprocess.Popen" in names
    prepare = calls[names.index("_prepare_runs")]
    popen = calls[names.index("subprocess.Popen")]
    assert prepare.lineno < popen.lineno
    assert "RUNS_DIR" in ast.unparse(prepare)  # the very run cache the lab is given
    body = ast.unparse(_function(tree, "_prepare_runs"))
    assert "UMM_RUNS_DIR" in body and "execute(" in body


def test_course_kernels_start_without_the_unencrypted_tcp_warning(tmp_path, capfd):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    path = tmp_path / "00_tiny.ipynb"
    nbformat.write(nb, path)
    executed, _ = notebooks.execute(path)
    assert executed.cells[0].outputs[0]["text"] == "42\n"
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00_tiny.ipynb"]  # no socket files


def test_a_failing_notebook_is_named_with_its_error_and_the_course_exits_non_zero(
        tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    failing = nbformat.v4.new_code_cell("raise KeyError('no-such-run')")
    nb = nbformat.v4.new_notebook(cells=[failing])
    nbformat.write(nb, tmp_path / "notebooks" / "00_broken.ipynb")
    monkeypatch.setattr(notebooks, "repo_root", lambda: tmp_path)
    assert notebooks.run_course(inplace=False) == 1
    out = capsys.readouterr().out
    assert "00_broken.ipynb" in out and "FAILED: CellExecutionError" in out and "no-such-run" in out


def test_an_exception_without_a_message_still_names_its_type():
    class DeadKernelError(RuntimeError):
        pass

    assert notebooks.failure_reason(DeadKernelError("")) == "DeadKernelError (no message)"
    assert notebooks.failure_reason(ValueError("bad")) == "ValueError: bad"


def test_a_long_failure_report_keeps_the_failing_cell_and_the_exception():
    report = "cell: fit(...)\n" + "x" * 10_000 + "\nTypeError: fit() takes a MultiModalDataset"
    short = notebooks.shorten(report)
    assert short.startswith("cell: fit(...)") and short.endswith("takes a MultiModalDataset")
    assert len(short) < 2_500
    assert notebooks.failure_reason(ValueError("\x1b[31mred\x1b[0m")) == "ValueError: red"


def test_the_course_logs_each_notebooks_claims_under_its_name_with_the_seed_offset(
        tmp_path, monkeypatch, capsys):
    (tmp_path / "notebooks").mkdir()
    code = ("import umm_helpers as umm\n"
            "seeds = umm.course_seeds(3)\n"
            "_ = umm.claims.report([umm.claims.difference(f'seeds {seeds}', [0.1, 0.2, 0.3])])")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]),
                   tmp_path / "notebooks" / "00_claims.ipynb")
    monkeypatch.setattr(notebooks, "repo_root", lambda: tmp_path)
    monkeypatch.setenv("UMM_SEED_OFFSET", "100")
    monkeypatch.delenv("UMM_CLAIMS_LOG", raising=False)
    log = tmp_path / "out" / "claims.jsonl"
    log.parent.mkdir()
    log.write_text('{"stale": true}\n')  # a previous run's claims are not kept
    assert notebooks.run_course(inplace=False, build=tmp_path / "out") == 0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["notebook"], r["text"], r["outcome"]) for r in rows] == [
        ("00_claims.ipynb", "seeds [100, 101, 102]", "held")]
    out = capsys.readouterr().out
    assert "seed offset 100; claims: 1 held, 0 not distinguishable, 0 failed" in out
    assert (tmp_path / "out" / "notebooks" / "00_claims.ipynb").exists()
    assert f"results: {tmp_path / 'out'}/notebooks (executed copies)" in out


def test_an_invalid_seed_offset_stops_the_course_before_any_kernel(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setattr(notebooks, "repo_root", lambda: tmp_path)
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / "00_x.ipynb")
    monkeypatch.setenv("UMM_SEED_OFFSET", "-3")
    monkeypatch.setattr(notebooks, "execute", lambda path: (_ for _ in ()).throw(AssertionError))
    with pytest.raises(ValueError, match="UMM_SEED_OFFSET='-3' is invalid.*UMM_SEED_OFFSET=100"):
        notebooks.run_course(inplace=False)
