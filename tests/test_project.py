"""Project wiring: environment.yml agrees with pyproject.toml, the Makefile and CI commands."""
import json
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def env_yml():
    text = (ROOT / "environment.yml").read_text()
    conda, pip, in_pip = [], [], False
    deps_text = text.split("dependencies:", 1)[1]
    for line in deps_text.splitlines():
        line = line.split("#")[0].rstrip()
        m = re.match(r"^(\s*)- (.+)$", line)
        if line.strip() == "- pip:":
            in_pip = True
        elif m and in_pip and len(m.group(1)) > 2:
            pip.append(m.group(2).strip())
        elif m:
            in_pip = False
            conda.append(m.group(2).strip())
    return text, conda, pip


def test_environment_installs_the_project_with_extras():
    text, conda, pip = env_yml()
    assert "conda-forge" in text and "defaults" not in text
    assert pip == ["-e .[course,test]"], "the pip section installs this project, nothing else"
    extras = pyproject()["project"]["optional-dependencies"]
    assert {"course", "test"} <= set(extras)


def test_environment_lists_no_python_library_of_its_own():
    _, conda, _ = env_yml()
    deps = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in pyproject()["project"]["dependencies"]}
    for extra in pyproject()["project"]["optional-dependencies"].values():
        deps |= {re.split(r"[<>=!\[ ]", d)[0].lower() for d in extra}
    names = {re.split(r"[<>= ]", c)[0].lower() for c in conda if c != "pip:"}
    allowed = {"python", "pip", "espeak-ng"}
    assert names <= allowed, f"conda lists {names - allowed}"
    assert not names & deps, "a Python library must come from pyproject.toml only"
    py = next(c for c in conda if c.startswith("python"))
    major_minor = tuple(int(x) for x in py.split("=")[1].split(".")[:2])
    required = pyproject()["project"]["requires-python"]
    assert major_minor >= tuple(int(x) for x in required.lstrip(">=").split(".")[:2])


def test_torch_is_pinned_once():
    deps = pyproject()["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
    kinds = {".toml", ".yml", ".txt", ".cfg"}
    hits = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in kinds
            and not {".venv", "build", ".git"} & set(p.parts) and "egg-info" not in str(p)
            and "torch==" in p.read_text(errors="ignore")]
    assert hits == [ROOT / "pyproject.toml"]


def test_required_dependencies_present():
    deps = " ".join(pyproject()["project"]["dependencies"])
    for name in ["torch", "torchvision", "numpy", "matplotlib", "seaborn", "ipywidgets",
                 "datasets", "safetensors", "tqdm", "scikit-learn"]:
        assert name in deps
    extras = pyproject()["project"]["optional-dependencies"]
    assert {"pytest", "nbval", "pytest-xdist"} <= {re.split(r"[<>=]", d)[0] for d in extras["test"]}
    assert pyproject()["project"]["scripts"]["umm"] == "umm_helpers.tools.cli:main"


def test_make_targets_exist():
    text = (ROOT / "Makefile").read_text()
    for target in ["setup", "course", "test", "lab", "notebooks", "data"]:
        assert re.search(rf"^{target}:", text, re.M), f"make {target} missing"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make course" in readme
    assert "espeak-ng" in ci


def test_cli_entry_points_work():
    out = subprocess.run([sys.executable, "-m", "umm_helpers", "--help"], capture_output=True,
                         text=True, check=True)
    for cmd in ["data", "run", "compare", "bench", "course"]:
        assert cmd in out.stdout


def test_import_has_no_side_effects():
    code = ("import torch, random; s = torch.initial_seed(); import umm_helpers, sys; "
            "assert torch.initial_seed() == s; "
            "assert 'umm_helpers.engine.trainer' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_lab_opens_the_first_notebook_with_widgets_extension():
    from umm_helpers.tools.cli import lab_command

    cmd, url = lab_command(8899, "abc")
    assert url == "http://127.0.0.1:8899/lab/tree/00_setup_and_data.ipynb?token=abc"
    assert "--port=8899" in cmd and "--IdentityProvider.token=abc" in cmd
    assert cmd[1].endswith("notebooks")
    assert (ROOT / "notebooks" / "00_setup_and_data.ipynb").exists()
    out = subprocess.run([str(Path(cmd[0]).parent / "jupyter"), "labextension", "list"],
                         capture_output=True, text=True)
    listing = out.stdout + out.stderr
    assert "@jupyter-widgets/jupyterlab-manager" in listing and "enabled" in listing
    dry = subprocess.run([sys.executable, "-m", "umm_helpers", "lab", "--dry-run",
                          "--port", "8899"], capture_output=True, text=True, check=True)
    assert "http://127.0.0.1:8899/lab/tree/00_setup_and_data.ipynb?token=" in dry.stdout


def test_every_public_name_resolves_even_after_submodule_imports():
    """Importing every layer first must not hide a façade name behind a submodule."""
    code = ("import umm_helpers as umm, importlib, types; "
            "[importlib.import_module('umm_helpers.' + t.partition(':')[0]) "
            " for t in set(umm._EXPORTS.values())]; "
            "bad = [n for n, t in umm._EXPORTS.items() "
            "       if isinstance(getattr(umm, n), types.ModuleType) != t.endswith(':')]; "
            "print(bad, umm.evaluate.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] umm_helpers.core.scoring"


def test_notebooks_import_only_the_facade():
    """Learners see one import: ``import umm_helpers as umm``."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                       if c["cell_type"] == "code")
        imports = re.findall(r"^[ \t]*(?:from umm_helpers\S* import .*|import umm_helpers.*)$",
                             code, re.M)
        assert imports == ["import umm_helpers as umm"], f"{path.name}: {imports}"


def test_seed_offset_shifts_the_course_seeds_and_refuses_bad_values(monkeypatch):
    import pytest

    from umm_helpers.settings import course_seeds, seed_offset

    assert seed_offset() == 0 and course_seeds(3) == [0, 1, 2]
    monkeypatch.setenv("UMM_SEED_OFFSET", "100")
    assert course_seeds(3) == [100, 101, 102] and course_seeds(3, start=3) == [103, 104, 105]
    for bad in ("-1", "x", "1.5"):
        monkeypatch.setenv("UMM_SEED_OFFSET", bad)
        with pytest.raises(ValueError, match=f"UMM_SEED_OFFSET={bad!r} is invalid"):
            course_seeds(1)
    monkeypatch.setenv("UMM_SEED_OFFSET", "")
    assert course_seeds(1) == [0]
    with pytest.raises(ValueError, match="positive whole number"):
        course_seeds(0)
