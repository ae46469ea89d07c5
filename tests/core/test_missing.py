"""The missing-modality protocol: conditions, seeded nested masks, fill, MMA."""
import numpy as np
import pytest
import torch

from umm_helpers.core.missing import (
    MaskTable,
    apply_presence,
    condition_presence,
    mma_presence,
    parse_condition,
    presence_to_array,
    standard_conditions,
    sweep_conditions,
    training_presence,
)

MODS = ["image", "audio"]


@pytest.mark.parametrize("text,kind,mod,rate", [
    ("full", "full", None, 0.0), ("miss:audio", "miss", "audio", 0.0),
    ("rate:image:0.3", "rate", "image", 0.3), ("rate:any:1", "rate", "any", 1.0)])
def test_parse_condition(text, kind, mod, rate):
    c = parse_condition(text, MODS)
    assert (c.kind, c.modality, c.rate) == (kind, mod, rate)
    assert parse_condition(str(c), MODS) == c


@pytest.mark.parametrize("text,why", [
    ("miss:text", "unknown modality 'text'"), ("rate:audio:1.5", "rate 1.5 is outside"),
    ("rate:audio:-0.1", "outside"), ("rate:audio:x", "is not a number"),
    ("missing:audio", "malformed"), ("rate:audio", "malformed"), ("", "malformed")])
def test_bad_conditions_list_accepted_forms(text, why):
    with pytest.raises(ValueError) as err:
        parse_condition(text, MODS)
    msg = str(err.value)
    assert why in msg
    assert "Accepted forms: full, miss:<m>, rate:<m>:<r>, rate:any:<r>" in msg
    assert "['audio', 'image']" in msg


def test_same_seed_same_masks_other_seed_other_masks():
    a = MaskTable.create(500, MODS, seed=3).presence_array("rate:any:0.5")
    b = MaskTable.create(500, MODS, seed=3).presence_array("rate:any:0.5")
    c = MaskTable.create(500, MODS, seed=4).presence_array("rate:any:0.5")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("mod", ["image", "audio", "any"])
def test_masks_are_nested_as_rate_grows(mod):
    table = MaskTable.create(1000, MODS, seed=0)
    prev = np.ones((1000, 2), dtype=bool)
    for r in np.linspace(0, 1, 11):
        pres = table.presence_array(f"rate:{mod}:{r:g}")
        assert not (pres & ~prev).any(), "a sample missing at a lower rate came back"
        prev = pres


def test_rate_semantics():
    table = MaskTable.create(2000, MODS, seed=1)
    pres = table.presence_array("rate:audio:0.3")  # columns: audio, image
    assert abs((~pres[:, 0]).mean() - 0.3) < 0.03 and pres[:, 1].all()
    anyp = table.presence_array("rate:any:0.6")
    lacking = (~anyp).sum(axis=1)
    assert lacking.max() == 1, "rate:any drops exactly one modality"
    assert abs((lacking == 1).mean() - 0.6) < 0.03
    assert abs((~anyp[:, 0]).mean() - (~anyp[:, 1]).mean()) < 0.05
    assert table.presence_array("rate:any:0").all()
    assert (~table.presence_array("miss:image")[:, 1]).all()
    assert table.presence_array("rate:image:1.0")[:, 1].sum() == 0


def test_three_modalities():
    table = MaskTable.create(300, ["text", "image", "audio"], seed=0)
    assert table.modalities == ("audio", "image", "text")
    pres = table.presence("rate:any:1.0")
    stacked = torch.stack([pres[m] for m in ("audio", "image", "text")], 1)
    assert (stacked.sum(1) == 2).all()


def test_apply_presence_zero_fills_only_missing():
    x = {"image": torch.ones(4, 1, 2, 2), "audio": torch.full((4, 3), 2.0)}
    present = condition_presence("miss:audio", 4, MODS)
    filled, pres = apply_presence(x, present)
    assert torch.equal(filled["audio"], torch.zeros(4, 3))
    assert torch.equal(filled["image"], x["image"])
    assert pres["image"].all() and not pres["audio"].any()
    assert torch.equal(x["audio"], torch.full((4, 3), 2.0)), "inputs are not modified in place"
    with pytest.raises(ValueError, match="one presence mask per modality"):
        apply_presence(x, {"image": present["image"]})


def test_training_presence_keeps_exact_fraction():
    pres = training_presence(1000, MODS, keep={"audio": 0.2}, seed=0)
    assert int(pres["audio"].sum()) == 200 and pres["image"].all()
    again = training_presence(1000, MODS, keep={"audio": 0.2}, seed=0)
    assert torch.equal(pres["audio"], again["audio"])
    both = training_presence(1000, MODS, keep={"audio": 0.1, "image": 0.1}, seed=0)
    assert (both["audio"] | both["image"]).all(), "no sample is left without any modality"
    with pytest.raises(ValueError, match="unknown modality 'text'"):
        training_presence(10, MODS, keep={"text": 0.5})
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        training_presence(10, MODS, keep={"audio": 1.5})


def test_mma_drops_one_present_modality_never_all():
    g = torch.Generator().manual_seed(0)
    full = {m: torch.ones(4000, dtype=torch.bool) for m in MODS}
    out = presence_to_array(mma_presence(full, 0.5, g))
    assert out.any(axis=1).all()
    assert abs((~out).any(axis=1).mean() - 0.5) < 0.03
    assert abs((~out[:, 0]).mean() - 0.25) < 0.03
    single = {"image": torch.tensor([True, False]), "audio": torch.tensor([False, True])}
    dropped = presence_to_array(mma_presence(single, 1.0, g))
    assert dropped.tolist() == [[False, True], [True, False]]
    assert torch.equal(mma_presence(full, 0.0, g)["audio"], full["audio"])
    with pytest.raises(ValueError, match="p_missing must lie in \\[0, 1\\]"):
        mma_presence(full, 1.2, g)


def test_sweeps_and_standard_conditions():
    sw = sweep_conditions(MODS)
    assert list(sw) == ["audio", "image", "any"] and len(sw["any"]) == 11
    assert sw["image"][3] == "rate:image:0.3"
    assert standard_conditions(MODS) == ["full", "miss:audio", "miss:image"]


def test_drop_one_mma_equals_the_indexed_formulation():
    """The mask formulation (no wait for the device) drops exactly what indexing the chosen
    modality of every dropped row would."""
    from umm_helpers.core.missing import mma_presence

    g = torch.Generator().manual_seed(3)
    mods = ["a", "b", "c"]
    present = {m: torch.rand(200, generator=g) < 0.8 for m in mods}
    out = mma_presence(present, 0.6, torch.Generator().manual_seed(5))
    # the same draws, replayed: which rows drop, then each row's victim among present ones
    g2 = torch.Generator().manual_seed(5)
    pres = torch.stack([present[m] for m in mods], dim=1)
    drop = (torch.rand(200, generator=g2) < 0.6) & (pres.sum(dim=1) >= 2)
    victim = torch.rand(200, 3, generator=g2).masked_fill(~pres, -1.0).argmax(dim=1)
    expected = pres.clone()
    rows = torch.nonzero(drop).squeeze(1)
    expected[rows, victim[rows]] = False
    assert torch.equal(torch.stack([out[m] for m in mods], dim=1), expected)
    assert 0 < int(drop.sum()) < 200
