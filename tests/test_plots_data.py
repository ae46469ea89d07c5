"""Data-set figures of notebook 00 return Figures with the expected content."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from umm_helpers import plots
from umm_helpers.data import MultiModalDataset
from umm_helpers.missing import MaskTable


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(0)
    part = lambda n: ({"image": rng.random((n, 1, 8, 8)), "audio": rng.random((n, 1, 6, 5))},
                      np.arange(n) % 3)
    return MultiModalDataset.from_arrays(part(12), part(6), part(6), classes=["a", "b", "c"])


def test_image_grid_titles_and_missing(ds):
    present = np.array([True, False] * 3)
    fig = plots.image_grid(ds.test, n=6, cols=3, present=present)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["a", "b (missing)", "c", "a (missing)", "b", "c (missing)"]


def test_spectrograms_and_balance(ds):
    assert len(plots.spectrograms(ds.test, [0, 1, 2]).axes) == 3
    fig = plots.class_balance(ds.splits())
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["train (12)", "validation (6)", "test (6)"]


def test_mask_tables_title_reports_missing_fraction():
    t = MaskTable.create(100, ["audio", "image"], 0)
    fig = plots.mask_tables({"miss:image": t.presence_array("miss:image")}, t.modalities)
    assert "missing: 0.00, 1.00" in fig.axes[0].get_title()
