"""Every notebook follows the course conventions (see the README's course map)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_SKIP", "NBVAL_RAISES_EXCEPTION")


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def nb(request):
    return request.param, json.loads(request.param.read_text())


def test_there_are_notebooks():
    assert (ROOT / "notebooks" / "00_setup_and_data.ipynb") in NOTEBOOKS


def test_name_pattern(nb):
    path, _ = nb
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)


def test_kernelspec_python3(nb):
    _, data = nb
    assert data["metadata"]["kernelspec"]["name"] == "python3"


def test_execution_counts_sequential_from_one(nb):
    _, data = nb
    counts = [c["execution_count"] for c in code_cells(data)]
    assert counts == list(range(1, len(counts) + 1)), "run `make notebooks` to refresh outputs"


def test_no_error_outputs_and_no_svg(nb):
    _, data = nb
    for cell in code_cells(data):
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"error output in: {source(cell)[:80]}"
            assert "image/svg+xml" not in out.get("data", {}), "SVG output (use PNG)"
            text = "".join(out.get("data", {}).get("text/plain", ""))
            if text.startswith("<Figure"):
                assert "image/png" in out["data"], "a figure rendered as text, not as PNG"


def test_no_trailing_semicolon(nb):
    _, data = nb
    for cell in code_cells(data):
        lines = [x for x in source(cell).rstrip().splitlines() if x.strip()]
        if lines:
            assert not lines[-1].rstrip().endswith(";"), f"trailing ';' in: {lines[-1]}"


def test_first_code_cell_is_parameters(nb):
    _, data = nb
    first = code_cells(data)[0]
    assert "parameters" in first["metadata"].get("tags", [])
    text = source(first)
    assert 'os.environ.get("UMM_DATASET"' in text and "get_device()" in text


def test_marker_lines_are_exact(nb):
    _, data = nb
    for cell in code_cells(data):
        for line in source(cell).splitlines():
            if any(m in line for m in MARKERS):
                assert line.strip() == line and line.startswith("# NBVAL_") and \
                    line[2:] in MARKERS, f"marker must be alone on its line: {line!r}"


def test_no_forbidden_patterns(nb):
    _, data = nb
    for cell in code_cells(data):
        text = source(cell)
        assert "../data" not in text, "use umm.data_dir() instead of relative paths"
        assert not re.search(r"^\s*[!%]pip", text, re.M), "no pip cells"


def test_listed_in_readme(nb):
    path, _ = nb
    assert path.name in (ROOT / "README.md").read_text()


def test_opens_with_objectives_and_ends_with_exercises(nb):
    _, data = nb
    first_md = source(data["cells"][0])
    assert data["cells"][0]["cell_type"] == "markdown" and "Runtime" in first_md
    text = "\n".join(source(c) for c in data["cells"] if c["cell_type"] == "markdown")
    assert "## Summary" in text and "## Exercises" in text


def _exercise_numbers(data) -> list[int]:
    """The numbered items of the notebook's ``## Exercises`` section."""
    for cell in data["cells"]:
        text = source(cell)
        if cell["cell_type"] == "markdown" and "## Exercises" in text:
            body = text.split("## Exercises", 1)[1].split("\n## ", 1)[0]
            return [int(n) for n in re.findall(r"^(\d+)\. ", body, re.M)]
    return []


def test_every_exercise_has_a_hidden_solution_or_a_check(nb):
    """Exercise k is answered by a code cell whose first lines say ``# Solution to exercise k``
    (source hidden, so the learner opens it on purpose) or ``# Check for exercise k`` (a check
    function the learner calls). nbval executes both, so every solution is tested."""
    _, data = nb
    numbers = _exercise_numbers(data)
    assert numbers, "the Exercises section has no numbered exercises"
    assert numbers == list(range(1, len(numbers) + 1)), "number the exercises 1, 2, ..."
    answered: dict[int, str] = {}
    for cell in code_cells(data):
        for line in source(cell).splitlines()[:2]:
            m = re.match(r"# (Solution to|Check for) exercise (\d+)\b", line)
            if m:
                answered[int(m.group(2))] = m.group(1)
                if m.group(1) == "Solution to":
                    assert cell["metadata"].get("jupyter", {}).get("source_hidden"), \
                        f"hide the source of the solution to exercise {m.group(2)}"
    missing = [k for k in numbers if k not in answered]
    assert not missing, f"exercises without a solution or check cell: {missing}"


def test_ends_with_references(nb):
    _, data = nb
    last = data["cells"][-1]
    text = source(last)
    assert last["cell_type"] == "markdown" and text.startswith("## References"), \
        "the last cell is a '## References' section"
    assert len(re.findall(r"^- ", text, re.M)) >= 1, "list at least one source"
    assert "2310.06383" in text or "arXiv" in text, "cite the sources with their arXiv ids"


# What a checked cell may not read: anything trained, timed or scored (those move by about a
# point between machines, so nbval would fail on another CPU or a GPU).
TRAINED = ("run_method", "run_seeds", "umm.compare", ".result", "scores", "history", "umm.fit",
           "perf_counter", "probe_accuracy", "PatternLogits.compute", "umm.claims")


def test_checked_outputs_print_no_trained_number(nb):
    """``NBVAL_CHECK_OUTPUT`` is for output that is the same on every machine."""
    _, data = nb
    for cell in code_cells(data):
        text = source(cell)
        if text.startswith("# NBVAL_CHECK_OUTPUT"):
            found = [t for t in TRAINED if t in text]
            assert not found, f"a checked cell reads {found}: mark it NBVAL_IGNORE_OUTPUT " \
                              f"or split it ({text.splitlines()[1][:60]!r})"


def test_claims_are_reported_not_asserted(nb):
    """Empirical claims go through umm.claims; an assert never pins which ones held."""
    _, data = nb
    for cell in code_cells(data):
        for line in source(cell).splitlines():
            if re.match(r"\s*assert\b", line):
                assert "out of date" not in line and not re.search(r"\.(held|outcome)\b", line), \
                    f"a claim's outcome is asserted: {line.strip()[:80]}"


def test_training_seeds_come_from_course_seeds(nb):
    """``UMM_SEED_OFFSET`` must reach every training seed: no literal seed lists or configs."""
    _, data = nb
    for cell in code_cells(data):
        text = source(cell)
        assert not re.search(r"\bSEEDS\s*=\s*\[", text), "SEEDS = umm.course_seeds(n)"
        assert not re.search(r"TrainConfig\([^)]*\bseed=\d", text), "TrainConfig(seed=SEED)"
        assert not re.search(r"\bSEED\s*=\s*\d", text), "SEED = umm.course_seeds(1)[0]"
