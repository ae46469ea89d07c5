"""Tests and tools that do not depend on order, load or the network: the browser test prepares
its own runs, and the course runner starts kernels without the unencrypted-TCP warning."""
from __future__ import annotations

import ast
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
