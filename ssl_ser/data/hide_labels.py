"""Hide most labels of a training set for semi-supervised experiments, keeping each hidden
emotion in ``extra.hidden_emotion`` (:data:`ssl_ser.labels.HIDDEN`) so that analyses (cluster
purity, NMI) can score against it; training never reads it.

:func:`hide_labels` keeps ``round(keep x n)`` labelled rows of each emotion (stratified), spread
evenly over the speakers of that emotion (round robin over speakers), picked by a seeded hash
of the key (speakers in a seeded order per emotion, so the ones that get a row more differ
between emotions): reproducible, and independent of the order of the rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Sequence

from ssl_ser.data.manifest import Utterance
from ssl_ser.labels import HIDDEN


def _rank(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}/{text}".encode()).hexdigest()


def hide_labels(rows: Sequence[Utterance], keep: float, seed: int = 0) -> tuple[list[Utterance], list[Utterance]]:
    """(rows that keep their labels, the others as unlabelled rows), each in input order.

    Hidden rows get ``labelled=False``, no emotion and no arousal/valence/dominance, and their
    emotion in ``extra.hidden_emotion``; rows that were unlabelled already stay as they are.
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], not {keep}")
    strata: dict[str | None, dict[str | None, list[Utterance]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.labelled:
            strata[row.emotion][row.speaker].append(row)
    kept: set[str] = set()
    for emotion, by_speaker in strata.items():
        # a speaker order per emotion: the speakers that get one more row differ between emotions
        speakers = sorted(by_speaker, key=lambda s: _rank(seed, f"speaker/{emotion}/{s}"))
        queues = [sorted(by_speaker[s], key=lambda r: _rank(seed, r.key)) for s in speakers]
        order = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]  # round robin
        n = len(order)
        kept.update(r.key for r in order[:max(1, round(keep * n))])
    labelled = [r for r in rows if r.key in kept]
    hidden = [r if not r.labelled else
              dataclasses.replace(r, labelled=False, emotion=None, arousal=None, valence=None, dominance=None,
                                  extra={**r.extra, HIDDEN: r.emotion})
              for r in rows if r.key not in kept]
    return labelled, hidden
