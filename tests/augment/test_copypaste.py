"""CopyPaste: labels, lengths and sources of the added rows, the batch fractions, reservoirs,
edge cases (neutral-only, single-class, unlabelled rows) and resumable randomness."""

from __future__ import annotations

import pytest
import torch

from ssl_ser.augment.augmenter import Augmenter, check_augment
from ssl_ser.augment.copypaste import CopyPaste, CopyPasteConfig
from ssl_ser.augment.draws import Draws
from ssl_ser.config import ConfigError
from ssl_ser.labels import IGNORE

from .conftest import CLASSES, CodedBatches, decode

SR = 16_000
NEUTRAL = CLASSES.index("neutral")


def make_cp(**options: object) -> CopyPaste:
    cfg = check_augment({"copypaste": options}).copypaste
    assert cfg is not None
    return CopyPaste(cfg, classes=CLASSES, device="cpu")


def check_rows(cp: CopyPaste, batches: CodedBatches, audio: torch.Tensor, lengths: torch.Tensor,
               targets, out_audio, out_lengths, out_targets) -> None:
    """Every added row is the concatenation of its two recorded parts, padded with zeros,
    labelled as its anchor; the original rows are untouched."""
    n = audio.shape[0]
    assert len(cp.last) == out_audio.shape[0] - n
    assert torch.equal(out_audio[:n, :audio.shape[1]], audio)
    assert torch.equal(out_lengths[:n], lengths)
    assert out_targets.keys[:n] == targets.keys
    if targets.speakers is not None:  # every per-row field has a row for every added pair
        assert len(out_targets.speakers) == out_audio.shape[0]
        assert out_targets.speakers[:n] == targets.speakers
    for i, row in enumerate(cp.last, start=n):
        first, second = row.parts
        assert int(out_lengths[i]) == first.length + second.length
        expected = torch.cat([batches.audio[p.key][p.start:p.start + p.length] for p in row.parts])
        assert torch.equal(out_audio[i, :int(out_lengths[i])], expected)
        assert not out_audio[i, int(out_lengths[i]):].any()
        assert int(out_targets.label[i]) == int(targets.label[row.anchor]) == row.label
        assert targets.keys[row.anchor] in (first.key, second.key)
        assert first.key != second.key
        assert bool(out_targets.labelled[i])
        assert out_targets.keys[i] == row.key
        assert torch.allclose(out_targets.attributes[i], targets.attributes[row.anchor], equal_nan=True)
        if targets.speakers is not None:
            assert out_targets.speakers[i] == targets.speakers[row.anchor]
        offset = 0
        for p in row.parts:  # each part is a crop of its source at most crop_seconds long
            assert p.length <= round(cp.cfg.crop_seconds * SR)
            assert decode(out_audio[i, offset:offset + 1]) == (int(p.key[1:]), p.start)
            offset += p.length


def test_neutral_scheme_labels_lengths_and_sources(batches: CodedBatches) -> None:
    cp = make_cp(scheme="neutral", batch_fraction=1.0, crop_seconds=0.5)
    labels = ["neutral", "neutral", "happy", "angry", "sad", None, "happy"]
    lengths = [12_000, 5_000, 9_000, 3_000, 10_000, 7_000, 8_000]
    audio, lens, targets = batches.make(labels, lengths)
    out = cp(audio, lens, targets, Draws(0, 0, 0, "copypaste"))
    check_rows(cp, batches, audio, lens, targets, *out)
    assert len(cp.last) == 6  # ratio 1.0: one per labelled row; the unlabelled row takes no part
    unlabelled_key = targets.keys[5]
    neutral_keys = {targets.keys[0], targets.keys[1]}
    for row in cp.last:
        keys = {p.key for p in row.parts}
        assert unlabelled_key not in keys
        partner = (keys - {targets.keys[row.anchor]}).pop()
        assert partner in neutral_keys  # N-CP: the partner is a neutral utterance
    assert sorted(r.anchor for r in cp.last) == [0, 1, 2, 3, 4, 6]  # every anchor once
    # crops: a 12000-sample source gives an 8000-sample (0.5 s) crop, shorter ones are whole
    for row in cp.last:
        for p in row.parts:
            assert p.length == min(8_000, batches.audio[p.key].numel())
    assert out[1].dtype == lens.dtype and out[0].shape[1] == int(out[1].max())


def test_same_scheme_partners_share_the_class(batches: CodedBatches) -> None:
    cp = make_cp(scheme="same", batch_fraction=1.0, crop_seconds=1.0)
    for _ in range(3):  # fill the reservoirs over a few batches
        audio, lens, targets = batches.make(["happy", "happy", "angry", "angry", "sad"], [4000] * 5)
        out = cp(audio, lens, targets, Draws(0, 0, _, "copypaste"))
        check_rows(cp, batches, audio, lens, targets, *out)
        labels_of = {k: targets.label[i] for i, k in enumerate(targets.keys)}
        for row in cp.last:
            for p in row.parts:
                if p.key in labels_of:
                    assert int(labels_of[p.key]) == row.label
            assert row.scheme == "same"
    # the sad utterance of the first batch had no partner; later ones find earlier sad ones
    assert cp.stats.skipped == 1
    assert cp.stats.added == 3 * 5 - 1


def test_partner_classes_tracked_across_batches(batches: CodedBatches) -> None:
    """Partners drawn from the reservoir come from earlier batches too, with the right class."""
    cp = make_cp(scheme="same", batch_fraction=1.0, reservoir=4)
    label_of: dict[str, str] = {}
    for step in range(6):
        labels = ["happy", "sad", "angry"]
        audio, lens, targets = batches.make(labels, [2000, 3000, 4000])
        label_of.update(zip(targets.keys, labels))
        cp(audio, lens, targets, Draws(1, 0, step, "copypaste"))
        for row in cp.last:
            assert {label_of[p.key] for p in row.parts} == {CLASSES[row.label]}
    assert all(len(slots) == 4 for slots in cp.reservoirs.slots.values())  # ring buffers stay small


def test_neutral_only_and_single_class_batches(batches: CodedBatches) -> None:
    cp = make_cp(scheme="neutral", batch_fraction=1.0)
    audio, lens, targets = batches.make(["neutral"], [3000])
    out_audio, out_lens, out_targets = cp(audio, lens, targets, Draws(0, 0, 0, "copypaste"))
    assert out_audio is audio and out_targets is targets  # no partner yet: unchanged
    assert cp.stats.skipped == 1
    audio, lens, targets = batches.make(["neutral", "neutral", "neutral"], [3000, 2000, 1000])
    out = cp(audio, lens, targets, Draws(0, 0, 1, "copypaste"))
    check_rows(cp, batches, audio, lens, targets, *out)
    assert len(cp.last) == 3 and all(r.label == NEUTRAL for r in cp.last)
    # an N-CP batch without any neutral seen so far: nothing to pair, nothing added
    cp2 = make_cp(scheme="neutral", batch_fraction=1.0)
    audio, lens, targets = batches.make(["happy", "happy"], [3000, 2000])
    out = cp2(audio, lens, targets, Draws(0, 0, 0, "copypaste"))
    assert out[0] is audio and cp2.stats.skipped == 2


def test_only_labelled_rows_take_part(batches: CodedBatches) -> None:
    cp = make_cp(scheme="same", batch_fraction=1.0)
    # rows 1 and 3 carry a class index but are flagged unlabelled (e.g. a semi-supervised mix)
    audio, lens, targets = batches.make(["happy", "happy", None, "happy"], [3000] * 4,
                                        labelled=[True, False, False, True])
    cp(audio, lens, targets, Draws(0, 0, 0, "copypaste"))
    used = {p.key for r in cp.last for p in r.parts}
    assert used == {targets.keys[0], targets.keys[3]}
    all_batch_unlabelled = batches.make([None, None], [3000, 3000])
    out = cp(*all_batch_unlabelled, Draws(0, 0, 1, "copypaste"))
    assert out[0] is all_batch_unlabelled[0] and cp.last == []


def test_extra_labels_kept_only_where_anchor_and_partner_agree(batches: CodedBatches) -> None:
    cp = make_cp(scheme="same", batch_fraction=1.0)
    audio, lens, targets = batches.make(["happy", "happy", "sad", "sad"], [3000] * 4,
                                        extra={"speaker": [0, 1, 2, 2]})
    _, _, out_targets = cp(audio, lens, targets, Draws(0, 0, 0, "copypaste"))
    for i, row in enumerate(cp.last, start=4):
        expected = 2 if row.label == CLASSES.index("sad") else IGNORE
        assert int(out_targets.extra["speaker"][i]) == expected


@pytest.mark.parametrize(("scheme", "fraction", "expected"), [
    ("both", 0.8, {"neutral": 0.4, "same": 0.4}),
    ("neutral", 0.8, {"neutral": 0.8, "same": 0.0}),
    ("same", 0.3, {"neutral": 0.0, "same": 0.3}),
])
def test_batch_fractions_over_many_batches(batches: CodedBatches, scheme: str, fraction: float,
                                           expected: dict[str, float]) -> None:
    cp = make_cp(scheme=scheme, batch_fraction=fraction, reservoir=2)
    augmenter = Augmenter({"copypaste": cp}, seed=3)
    n = 2000
    audio, lens, targets = batches.make(["neutral", "happy", "happy"], [400, 300, 200])
    for _ in range(n):
        augmenter(audio, lens, targets)
    # binomial standard deviation at n=2000 is about 0.011; allow 4 of them
    assert cp.stats.neutral_batches / n == pytest.approx(expected["neutral"], abs=0.045)
    assert cp.stats.same_batches / n == pytest.approx(expected["same"], abs=0.045)
    assert cp.stats.batches == cp.stats.neutral_batches + cp.stats.same_batches


def test_every_rank_augments_the_same_batches_with_its_own_partners(batches: CodedBatches) -> None:
    ranks = [Augmenter({"copypaste": make_cp(scheme="both", batch_fraction=0.5)}, seed=7, rank=r)
             for r in range(2)]
    decisions: list[list[str | None]] = [[], []]
    partners: list[list[str]] = [[], []]
    audio, lens, targets = batches.make(["neutral", "neutral", "happy", "happy", "sad", "sad"],
                                        [3000, 2500, 2000, 3500, 1500, 3000])
    for _ in range(40):
        for r, aug in enumerate(ranks):
            aug(audio, lens, targets)
            cp = aug.steps["copypaste"]
            decisions[r].append(cp.last[0].scheme if cp.last else None)
            partners[r] += [f"{p.key}:{p.start}" for row in cp.last for p in row.parts]
    assert decisions[0] == decisions[1]
    assert {d for d in decisions[0]} == {None, "neutral", "same"}
    assert partners[0] != partners[1]  # crops and partners are drawn per rank


def test_resumed_augmenter_reproduces_the_uninterrupted_one(batches: CodedBatches) -> None:
    data = [batches.make(["neutral", "happy", "sad", "happy"], [9000, 7000, 8000, 5000]) for _ in range(8)]

    def fresh() -> Augmenter:
        return Augmenter({"copypaste": make_cp(scheme="both", batch_fraction=0.7, crop_seconds=0.3)}, seed=11)

    whole = fresh()
    expected = [whole(*batch) for batch in data]
    first = fresh()
    for batch in data[:4]:
        first(*batch)
    state = first.state_dict()
    resumed = fresh()
    resumed.load_state_dict(state)
    for batch, want in zip(data[4:], expected[4:]):
        got = resumed(*batch)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert got[2].keys == want[2].keys and torch.equal(got[2].label, want[2].label)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="augment.copypaste.batch_fraction"):
        check_augment({"copypaste": {"batch_fraction": 1.5}})
    with pytest.raises(ConfigError, match="augment.copypaste.shceme.*scheme"):
        check_augment({"copypaste": {"shceme": "both"}})
    with pytest.raises(ConfigError, match="augment.copypaste.scheme"):
        check_augment({"copypaste": {"scheme": "mixed"}})
    with pytest.raises(ConfigError, match="'calm' is not a class"):
        CopyPaste(CopyPasteConfig(neutral="calm"), classes=CLASSES, device="cpu")
    # SE-CP needs no neutral class
    CopyPaste(CopyPasteConfig(scheme="same", neutral="calm"), classes=CLASSES, device="cpu")
    # several neutral classes (a label space keeping each corpus' own neutral label)
    cp = CopyPaste(CopyPasteConfig(neutral=["neutral", "sad"]), classes=CLASSES, device="cpu")
    assert cp.neutral == [CLASSES.index("neutral"), CLASSES.index("sad")]
