"""Empirical claims with intervals: held / not distinguishable / failed (every notebook)."""
import json

import numpy as np
import pytest
import torch
from _engine_data import late_model
from matplotlib.figure import Figure

from umm_helpers.core.scoring import evaluate
from umm_helpers.course import claim_log, claims
from umm_helpers.course.claims import FAILED, HELD, UNCLEAR, Claim, difference, every, judge


def test_judge_reads_the_interval_against_the_threshold():
    assert judge(0.01, 0.05, 0.0) == HELD
    assert judge(-0.01, 0.05, 0.0) == UNCLEAR
    assert judge(-0.05, -0.01, 0.0) == FAILED
    assert judge(-0.05, 0.0, 0.0) == FAILED, "exactly at the threshold is not above it"
    assert judge(-0.05, -0.01, 0.0, below=True) == HELD
    assert judge(0.01, 0.05, 0.0, below=True) == FAILED
    assert judge(-0.01, 0.05, 0.0, below=True) == UNCLEAR


def test_three_seeds_give_the_range_of_the_seeds():
    # resampling 3 seeds: all three draws equal the lowest seed with probability 1/27 > 2.5 %,
    # so the 95 % interval runs from the lowest to the highest seed
    c = difference("x above 0.05", [0.10, 0.20, 0.30], threshold=0.05)
    assert (c.low, c.estimate, c.high) == pytest.approx((0.10, 0.20, 0.30))
    assert c.outcome == HELD and c.basis == "bootstrap over 3 seeds"
    assert difference("x above 0.15", [0.10, 0.20, 0.30], threshold=0.15).outcome == UNCLEAR
    assert difference("x below 0.35", [0.10, 0.20, 0.30], threshold=0.35, below=True).held


def test_one_seed_of_test_samples_gives_the_binomial_interval():
    rng = np.random.default_rng(1)
    hits = (rng.random(450) < 0.85).astype(float)
    c = difference("accuracy above chance", hits[None], threshold=0.1)  # [1, N]: one seed
    p = hits.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / 450)  # normal approximation, about 3.3 points
    assert c.high - c.low == pytest.approx(2 * half, rel=0.15)
    assert c.estimate == pytest.approx(p)
    assert c.basis == "bootstrap over 1 seed x 450 test samples"


def test_pairing_cancels_what_two_methods_share():
    rng = np.random.default_rng(2)
    easy = rng.random((3, 450)) < 0.8          # samples both methods get right
    a = easy.astype(float)
    b = a.copy()
    b[:, :9] = 1 - b[:, :9]                      # b differs on 9 samples per seed
    paired = difference("a vs b", a, b)
    unpaired = difference("a vs b", a, b, paired=False)
    assert paired.estimate == pytest.approx(a.mean() - b.mean())
    assert paired.high - paired.low < 0.5 * (unpaired.high - unpaired.low)
    assert paired.basis.startswith("paired bootstrap over 3 seeds x 450")
    assert not unpaired.basis.startswith("paired")


def test_identical_measurements_are_exact():
    ones, zeros = np.ones((3, 50)), np.zeros((3, 50))
    c = difference("a ahead by half", ones, zeros, threshold=0.5)
    assert (c.low, c.estimate, c.high, c.outcome) == (1.0, 1.0, 1.0, HELD)
    assert difference("a ahead by all", ones, zeros, threshold=1.0).outcome == FAILED


def test_same_measurements_same_interval():
    rng = np.random.default_rng(3)
    a, b = rng.random((2, 100)), rng.random((2, 100))
    assert difference("t", a, b) == difference("t", a, b)


def test_bad_measurements_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="one number has no spread"):
        difference("t", [0.3])
    with pytest.raises(ValueError, match="paired=False"):
        difference("t", np.ones((3, 10)), np.ones((3, 12)))
    with pytest.raises(ValueError, match="NaN or inf"):
        difference("t", [0.1, float("nan")])
    with pytest.raises(ValueError, match=r"\[S\] or per seed and sample \[S, N\]"):
        difference("t", np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="outside its interval"):
        Claim("t", 0.5, 0.0, 0.4, 0.0)
    with pytest.raises(ValueError, match="finite"):
        Claim("t", float("nan"), 0.0, 0.4, 0.0)


def test_every_is_as_strong_as_its_weakest_part():
    held = difference("h", [0.1, 0.2, 0.3], threshold=0.0)
    unclear = difference("u", [0.1, 0.2, 0.3], threshold=0.15)
    failed = difference("f", [0.1, 0.2, 0.3], threshold=0.5)
    assert every("all", [held, held]).outcome == HELD
    both = every("all", [held, unclear])
    assert both.outcome == UNCLEAR and both.threshold == 0.15 and "weakest of 2: u" in both.basis
    assert every("all", [held, unclear, failed]).outcome == FAILED
    # the part shown is the one that decides the outcome, not the one with the smallest estimate
    wide = difference("wide", [0.00, 0.10, 0.40], threshold=0.05)       # unclear, estimate 0.167
    narrow = difference("narrow", [0.06, 0.07, 0.08], threshold=0.05)   # held, estimate 0.07
    assert every("all", [narrow, wide]).basis.startswith("weakest of 2: wide")
    assert every("all", [narrow, wide]).outcome == UNCLEAR
    with pytest.raises(ValueError):
        every("none", [])


def test_some_is_as_strong_as_its_strongest_part():
    held = difference("h", [0.1, 0.2, 0.3], threshold=0.0)
    unclear = difference("u", [0.1, 0.2, 0.3], threshold=0.15)
    failed = difference("f", [0.1, 0.2, 0.3], threshold=0.5)
    one = claims.some("any", [failed, unclear, held])
    assert one.outcome == HELD and one.basis.startswith("strongest of 3: h")
    assert claims.some("any", [failed, unclear]).outcome == UNCLEAR
    assert claims.some("any", [failed, failed]).outcome == FAILED
    with pytest.raises(ValueError):
        claims.some("none", [])


def test_lines_tables_and_generated_prose():
    c = difference("ume-mma above joint", [0.10, 0.12, 0.14], threshold=0.05)
    assert c.line() == ("               HELD  ume-mma above joint: +12.0 points [95 % CI +10.0 "
                        "to +14.0], needs > +5.0; bootstrap over 3 seeds")
    md = claims.table([c]).splitlines()
    assert md[2] == ("| ume-mma above joint | +12.0 points [95 % CI +10.0 to +14.0] | > +5.0 "
                     "| held |")
    assert c.says("ahead", "tied", "behind") == "ahead"
    raw = difference("ECE below 0.1", [0.02, 0.03], threshold=0.1, below=True, unit="")
    assert "ECE below 0.1: +0.025 [95 % CI +0.02 to +0.03], needs < +0.1" in raw.line()


def test_report_logs_each_claim_once_and_runs_can_be_compared(tmp_path, monkeypatch, capsys):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("UMM_CLAIMS_LOG", str(log))
    monkeypatch.setenv("UMM_NOTEBOOK", "03_x.ipynb")
    a = difference("a", [0.1, 0.2, 0.3], threshold=0.0)
    b = difference("b", [0.1, 0.2, 0.3], threshold=0.15)
    md = claims.report([a, b])
    assert md.count("\n") == 3 and len(capsys.readouterr().out.splitlines()) == 2
    first = claim_log.read_log(log)
    assert [(r["notebook"], r["text"], r["outcome"]) for r in first] == [
        ("03_x.ipynb", "a", HELD), ("03_x.ipynb", "b", UNCLEAR)]
    assert json.loads(log.read_text().splitlines()[0])["threshold"] == 0.0
    second = [dict(first[0], outcome=FAILED), dict(first[1], text="c")]
    assert claim_log.changed_outcomes(first, second) == [
        ("03_x.ipynb", "a", HELD, FAILED), ("03_x.ipynb", "b", UNCLEAR, "absent"),
        ("03_x.ipynb", "c", "absent", UNCLEAR)]
    assert claim_log.counts(first) == {HELD: 1, UNCLEAR: 1, FAILED: 0}
    assert claim_log.read_log(tmp_path / "none.jsonl") == []
    monkeypatch.delenv("UMM_CLAIMS_LOG")
    claims.report([a])
    assert len(claim_log.read_log(log)) == 2, "no log without UMM_CLAIMS_LOG"


def test_correct_matches_the_scores_of_every_condition(ds):
    torch.manual_seed(0)
    model = late_model(ds).eval()
    for cond, score in evaluate(model, ds.test, ["full", "miss:audio", "rate:any:0.5"]).items():
        hits = claims.correct([model, model], ds.test, cond)
        assert hits.shape == (2, len(ds.test))
        assert hits[0].mean() == pytest.approx(score) and (hits[0] == hits[1]).all()
    with pytest.raises(TypeError, match="runs or models"):
        claims.correct(["nope"], ds.test)


def test_claims_figure_bars_are_margins_with_intervals():
    up = difference("e1", [0.02, 0.03, 0.04], threshold=0.0)
    down = difference("e2", [0.02, 0.03, 0.04], threshold=0.05, below=True)
    fig = claims.claims_figure({"A": [up, down], "B": [up, down]}, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, [3.0, 2.0, 3.0, 2.0], atol=1e-9)
    assert [p.get_hatch() or "" for p in ax.patches] == ["", "", "", ""]
    with pytest.raises(ValueError, match="other claims"):
        claims.claims_figure({"A": [up, down], "B": [up]})
    with pytest.raises(ValueError):
        claims.claims_figure({})
