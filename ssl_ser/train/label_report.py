"""The main label space against the training shards' label histograms (their ``index.json``
files, no audio read): class counts, and which training labels the space drops."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import torch

from ssl_ser.data.histograms import index_histogram, index_of
from ssl_ser.labels import IGNORE, LabelSpace


def training_labels(specs: Sequence[str], field: str) -> Iterator[tuple[str | None, str, int]]:
    """``(corpus, label, count)`` of ``field``, from each shard set's index; corpus None when
    the set mixes corpora (its histogram is not per corpus)."""
    for spec in specs:
        index = index_of(spec)
        corpus = next(iter(index.corpora)) if len(index.corpora) == 1 else None
        for value, n in index_histogram(index, field).items():
            yield corpus, value, n


def dropped_labels(specs: Sequence[str], labels: LabelSpace) -> list[str]:
    """Lines that say which training labels the label space drops (mapped to null, or
    unmapped with ``unmapped: drop``), with counts: the rows still train as unlabelled audio,
    but a researcher must see that their labels are gone."""
    if labels.field == "speaker":
        return []
    dropped: dict[str, Counter[str]] = {"mapped to no class": Counter(),
                                        "not mapped (unmapped: drop)": Counter()}
    for corpus, value, n in training_labels(specs, labels.field):
        if corpus is None:
            continue  # labels of a mixed set cannot be told apart by corpus
        table = labels.mapping.get(corpus) or labels.mapping.get("*")
        if table is not None and table.quadrant is not None:
            continue  # labels come from arousal/valence, not from the categorical histogram
        found = labels.lookup(corpus, value)
        if found == IGNORE:
            dropped["mapped to no class"][f"{corpus}:{value}"] += n
        elif found is None and labels.unmapped == "drop":  # else: an error when met
            dropped["not mapped (unmapped: drop)"][f"{corpus}:{value}"] += n
    return [f"labels: {sum(counts.values())} training label(s) {what}, kept as unlabelled audio: "
            + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            for what, counts in dropped.items() if counts]


def class_counts(specs: Sequence[str], labels: LabelSpace) -> torch.Tensor:
    """Training-shard counts of each class of the label space."""
    counts = torch.zeros(labels.num_classes)
    for corpus, value, n in training_labels(specs, labels.field):
        found = (labels.index.get(value) if labels.field == "speaker"
                 else labels.lookup(corpus or "*", value))
        if found is not None and found != IGNORE:
            counts[found] += n
    return counts
