"""Label histograms of shard sets, read from their ``index.json`` files (no audio is read):
class counts for label spaces, class weights and reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from ssl_ser.data import shard_index as shard_sets
from ssl_ser.errors import SslSerError

_HISTOGRAMS = {"emotion": "emotions", "speaker": "corpus_speakers", "corpus": "corpora"}


def index_of(spec: str) -> shard_sets.ShardIndex:
    """The ``index.json`` of a shard set given as a directory, its index, or a pattern/URL of
    its shards (the index lies next to them)."""
    try:
        return shard_sets.read_index(spec)
    except SslSerError:
        parent = spec.rsplit("/", 1)[0] if "/" in spec else "."
        if parent == spec:
            raise
        return shard_sets.read_index(parent)


def index_histogram(index: shard_sets.ShardIndex, field: str) -> Mapping[str, int]:
    """Label counts of ``field`` in one shard set's index."""
    if field not in _HISTOGRAMS:
        raise SslSerError(f"no label histogram for field {field!r} (one of {', '.join(_HISTOGRAMS)})")
    return getattr(index, _HISTOGRAMS[field])


def class_histogram(specs: Sequence[str], field: str) -> Counter[str]:
    """Label counts of ``field`` summed over the shard sets' ``index.json`` files."""
    total: Counter[str] = Counter()
    for spec in specs:
        total.update(index_histogram(index_of(spec), field))
    return total
