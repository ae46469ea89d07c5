"""Gap to a ceiling measured on held-out seeds (notebook 06), on hand-computed numbers."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from umm_helpers.course import ceiling_gap


def test_held_out_ceilings_summary():
    c = ceiling_gap.held_out_ceilings({"audio": [0.85, 0.84, 0.87], "image": [0.8]})
    assert c["audio"]["best"] == 0.87 and c["audio"]["worst"] == 0.84
    assert c["audio"]["mean"] == pytest.approx(0.85333333)
    assert c["audio"]["std"] == pytest.approx(np.std([0.85, 0.84, 0.87], ddof=1))
    assert c["image"] == {"best": 0.8, "worst": 0.8, "mean": 0.8, "std": 0.0}
    with pytest.raises(ValueError, match="non-empty"):
        ceiling_gap.held_out_ceilings({"audio": []})


def test_gaps_per_seed_use_the_other_modality():
    scores = {"ume": [{"full": 0.97, "miss:audio": 0.84, "miss:image": 0.86},
                      {"full": 0.98, "miss:audio": 0.85, "miss:image": 0.83}]}
    g = ceiling_gap.gaps_per_seed(scores, {"audio": 0.87, "image": 0.85})
    # miss:audio leaves image (ceiling 0.85); miss:image leaves audio (0.87)
    np.testing.assert_allclose(g["ume"]["miss:audio"], [-0.01, 0.0], atol=1e-12)
    np.testing.assert_allclose(g["ume"]["miss:image"], [-0.01, -0.04], atol=1e-12)
    with pytest.raises(ValueError, match="no runs"):
        ceiling_gap.gaps_per_seed({"joint": []}, {"audio": 0.8, "image": 0.8})
    with pytest.raises(ValueError, match="ceiling"):
        ceiling_gap.gaps_per_seed(scores, {})


def test_gap_bars_means_band_and_legend():
    gaps = {"ume": {"miss:audio": [-0.01, 0.0, -0.02], "miss:image": [-0.03, -0.01, -0.02]},
            "joint": {"miss:audio": [-0.12], "miss:image": [-0.3]}}
    fig = ceiling_gap.gap_bars(gaps, band={"miss:audio": -0.009}, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches if p.get_width() < 0.5]
    np.testing.assert_allclose(heights[:4], [-1.0, -12.0, -2.0, -30.0], atol=1e-9)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "miss:audio: spread of the held-out uni-modal seeds" in labels
    assert "ceiling (best held-out uni-modal seed)" in labels
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ume", "joint"]
    with pytest.raises(ValueError):
        ceiling_gap.gap_bars({})
