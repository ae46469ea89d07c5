"""Comparison tables over seeds: mean, spread, files, and refused input."""
from __future__ import annotations

import pytest

from umm_helpers.methods.compare import CompareTable, compare, parse_methods, summarize


def test_summarize_mean_and_std():
    runs = [{"scores": {"full": s, "miss:a": s / 2}, "aurc": {"any": s - 0.1}}
            for s in (0.8, 0.6)]
    table = summarize({"joint": runs})
    assert table.columns == ["full", "miss:a", "aurc:any"]
    row = table.rows[0]
    assert row["full"] == pytest.approx((0.7, 0.1414213), rel=1e-5)
    assert row["seeds"] == 2
    assert "| joint | 0.700 ± 0.141 | 0.350 ± 0.071 | 0.600 ± 0.141 |" in table.to_markdown()
    assert table.to_csv().splitlines()[0] == ("method,seeds,full_mean,full_std,miss:a_mean,"
                                              "miss:a_std,aurc:any_mean,aurc:any_std")


def test_compare_writes_csv_and_markdown(registered, tmp_path):
    table = compare("tiny", "joint,ume", "0,1", epochs=1)
    assert isinstance(table, CompareTable)
    assert [r["method"] for r in table.rows] == ["joint", "ume"]
    assert all(r["seeds"] == 2 for r in table.rows)
    assert table.csv_path == tmp_path / "runs" / "tiny" / "compare.csv"
    assert table.markdown_path.read_text() == table.to_markdown()
    assert len(table.csv_path.read_text().splitlines()) == 3


@pytest.mark.parametrize("seeds", ["0;1", "", " , ", []])
def test_bad_seeds_are_refused_before_training(registered, seeds):
    with pytest.raises(ValueError, match="seeds must be a comma list"):
        compare("tiny", "joint", seeds, epochs=1)


def test_unknown_methods_are_refused_before_training(registered, tmp_path):
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        compare("tiny", "joint,nope", "0", epochs=1)
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written
    with pytest.raises(ValueError, match="methods must be 'all'"):
        parse_methods(" , ", ["audio", "image"])
    assert parse_methods("all", ["image", "audio"])[:2] == ["unimodal:audio", "unimodal:image"]
