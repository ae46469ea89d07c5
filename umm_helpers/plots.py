"""Pure plotting functions: each returns a matplotlib ``Figure`` (no pyplot state).

Show one in a notebook with ``display(fig)``. Notebook 00 uses the data-set figures.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from umm_helpers.data.dataset import Split


def image_grid(split: Split, n: int = 20, modality: str = "image", cols: int = 10,
               present: np.ndarray | None = None) -> Figure:
    """The first ``n`` samples of an image-like modality with their labels.

    ``present`` (bool ``[n]``) greys out samples whose modality is missing.
    """
    n = min(n, len(split))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(1.1 * cols, 1.25 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i >= n:
            continue
        x = split.inputs[modality][i].detach().cpu().numpy()
        img = x[0] if x.ndim == 3 else x.reshape(1, -1)
        missing = present is not None and not bool(present[i])
        ax.imshow(np.zeros_like(img) if missing else img, cmap="gray" if not missing else "Greys",
                  vmin=0, vmax=1, aspect="auto")
        label = split.classes[int(split.labels[i])]
        ax.set_title(f"{label}{' (missing)' if missing else ''}", fontsize=8)
    return fig


def spectrograms(split: Split, index: Sequence[int], modality: str = "audio") -> Figure:
    """Spectrograms of the samples at ``index`` (frequency up, time right)."""
    fig = Figure(figsize=(2.2 * len(index), 2.3), layout="constrained")
    axes = fig.subplots(1, len(index), squeeze=False)[0]
    for ax, i in zip(axes, index):
        spec = split.inputs[modality][i, 0].detach().cpu().numpy()
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
        speaker = split.meta.get("speaker")
        who = f"\n{speaker[i]}" if speaker is not None else ""
        ax.set_title(f"'{split.classes[int(split.labels[i])]}'{who}", fontsize=8)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("mel band")
    return fig


def class_balance(splits: Mapping[str, Split]) -> Figure:
    """Samples per class in each split, as grouped bars."""
    fig = Figure(figsize=(8, 3), layout="constrained")
    ax = fig.subplots()
    names = list(splits)
    classes = next(iter(splits.values())).classes
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        counts = np.bincount(splits[name].labels.cpu().numpy(), minlength=len(classes))
        ax.bar(np.arange(len(classes)) + k * width, counts, width, label=f"{name} ({counts.sum()})")
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    return fig


def mask_tables(tables: Mapping[str, np.ndarray], modalities: Sequence[str],
                n: int = 60) -> Figure:
    """Presence tables side by side: one column per modality, one row per sample (dark = missing)."""
    fig = Figure(figsize=(2.0 * len(tables), 4.0), layout="constrained")
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, (title, pres) in zip(axes, tables.items()):
        ax.imshow(pres[:n].astype(float), cmap="Greys_r", vmin=0, vmax=1, aspect="auto",
                  interpolation="nearest")
        ax.set_xticks(range(len(modalities)), list(modalities))
        missing = 1.0 - pres.mean(axis=0)
        ax.set_title(f"{title}\nmissing: " + ", ".join(f"{v:.2f}" for v in missing), fontsize=8)
    axes[0].set_ylabel(f"test sample (first {n})")
    return fig
