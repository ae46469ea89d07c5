"""The claims a course run reported, as JSON lines: written by the notebooks, read by the
course runner and ``make gpu-check`` (pure: no PyTorch, so the runner stays light)."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

HELD, UNCLEAR, FAILED = "held", "not distinguishable", "failed"
OUTCOMES = (HELD, UNCLEAR, FAILED)


def log_claims(claims: Sequence[Mapping[str, object]], path: str | None = None) -> None:
    """Append claims as JSON lines to ``path`` (default ``$UMM_CLAIMS_LOG``; nothing when unset),
    tagged with ``$UMM_NOTEBOOK`` (set by the course runner). One write per call, so a reader
    never sees half a line."""
    path = path or os.environ.get("UMM_CLAIMS_LOG")
    if not path:
        return
    notebook = os.environ.get("UMM_NOTEBOOK", "")
    text = "".join(json.dumps({"notebook": notebook, **c}) + "\n" for c in claims)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """The claims a course run logged, in order (an absent file: none)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def changed_outcomes(first: Sequence[Mapping[str, object]], second: Sequence[Mapping[str, object]]
                     ) -> list[tuple[str, str, str, str]]:
    """``(notebook, claim, outcome in first, outcome in second)`` for every claim whose outcome
    differs between two course runs (``"absent"`` where only one run has it)."""
    def index(rows: Sequence[Mapping[str, object]]) -> dict[tuple[str, str], str]:
        return {(str(r["notebook"]), str(r["text"])): str(r["outcome"]) for r in rows}

    a, b = index(first), index(second)
    keys = list(dict.fromkeys([*a, *b]))
    return [(nb, text, a.get((nb, text), "absent"), b.get((nb, text), "absent"))
            for nb, text in keys if a.get((nb, text)) != b.get((nb, text))]


def counts(rows: Sequence[Mapping[str, object]]) -> dict[str, int]:
    """How many logged claims ended in each outcome."""
    return {o: sum(1 for r in rows if r["outcome"] == o) for o in OUTCOMES}


def counts_text(rows: Sequence[Mapping[str, object]]) -> str:
    """``"3 held, 1 not distinguishable, 0 failed"``."""
    return ", ".join(f"{n} {o}" for o, n in counts(rows).items())
