"""The shard reader the trainers use: WebDataset shards in, padded batches with labels out.

Two modes:

``train`` (resampled)
    Each DataLoader worker of each rank draws shards *with replacement* from a generator
    seeded by ``(seed, epoch, rank, worker)``, shuffles samples in a buffer, and yields a
    fixed number of batches, so every rank gets exactly
    ``ceil(samples_per_epoch / (world_size * batch_size))`` batches per epoch: DDP can never
    hang on an uneven last batch. Several :class:`StreamSource` s are mixed sample by sample
    in proportion to their weights (e.g. labelled and unlabelled sets).

``exact`` (each sample once)
    Validation, test and embedding passes: every sample of every source is delivered exactly
    once per epoch across ranks x workers. Shards are dealt out to the ``world_size *
    num_workers`` readers; when there are fewer shards than readers, every reader reads all
    shards and keeps every n-th sample instead. Ranks may then get different numbers of
    batches, so a trainer must not synchronise per batch in this mode: it collects its
    results and gathers them across ranks at the end.

Both modes are deterministic for a given ``(seed, epoch)`` (and the same world size and worker
count): this is how a resumed run reproduces the uninterrupted one. A missing, corrupt or
truncated shard is skipped with a warning and counted in :class:`StreamStats`; every worker
reports its counts with each batch and when it finishes, and :attr:`ShardStream.stats` sums
them. A shard set with an ``index.json`` is read from it (its shard list, not a glob), and
after an exact pass :meth:`ShardStream.shortfall` compares what was read with the counts the
index promises: the one place that decides whether a pass saw everything.

Rank and world size come from the explicit arguments when given, else from
``torch.distributed`` when it is initialised (Ray Train), else from the ``RANK`` and
``WORLD_SIZE`` environment variables, else a single process.

Why one module of ~700 lines: one pipeline whose stages (shard specs, the reader that runs in
DataLoader workers, mixing, exact passes, bucketing, collation, the stream object) share
private settings and record types; split, they would have to export those internals. Tar
members are read and grouped into samples by webdataset's own iterators.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import json
import logging
import math
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from braceexpand import braceexpand

from ssl_ser import SAMPLE_RATE, audio
from ssl_ser.data.manifest import ATTRIBUTES
from ssl_ser.data.shard_index import INDEX, ShardError, open_url, read_index
from ssl_ser.errors import SslSerError
from ssl_ser.files import is_url

log = logging.getLogger(__name__)

Mode = Literal["train", "exact"]
ShardSpec = str | os.PathLike[str] | Sequence["str | os.PathLike[str]"]
_GLOB_CHARS = set("*?[")
_MAX_FAILED_NAMES = 1000


class StreamError(SslSerError):
    """A shard specification or stream setting that cannot be used."""


# --- public data types ----------------------------------------------------------------------

@dataclass
class StreamSource:
    """One shard set in a mixed stream."""

    shards: ShardSpec
    """Anything :func:`resolve_shards` accepts."""
    weight: float | None = None
    """Share of the training stream; None: proportional to the set's sample count."""
    name: str | None = None


@dataclass
class StreamStats:
    """What a stream read, skipped and failed on (summed over DataLoader workers)."""

    shards_opened: int = 0
    shards_failed: int = 0
    """Distinct shards that could not be opened or broke off (missing, corrupt, truncated;
    one resampled many times counts once); their samples before the break are delivered."""
    samples_read: int = 0
    samples_failed: int = 0
    """Samples with a missing member, unreadable JSON or undecodable audio."""
    batches: int = 0
    failed_shards: list[str] = field(default_factory=list)
    """The failed shards' names (the first 1000)."""

    def __add__(self, other: StreamStats) -> StreamStats:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name)
                  for f in dataclasses.fields(self) if f.name != "failed_shards"}
        names = list(dict.fromkeys(self.failed_shards + other.failed_shards))
        if all(s.shards_failed == len(s.failed_shards) for s in (self, other)):
            values["shards_failed"] = len(names)  # two workers failing on one shard: one shard
        return StreamStats(**values, failed_shards=names[:_MAX_FAILED_NAMES])

    def as_dict(self) -> dict[str, int]:
        """The counters alone (for logging)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "failed_shards"}


@dataclass(frozen=True)
class Shortfall:
    """What a whole exact pass could not read, against its shard sets' ``index.json``."""

    expected: int | None
    """Samples the indexes list; None when a set has no index (or the pass was one rank's)."""
    read: int
    """Samples delivered."""
    failed_shards: list[str]
    """Shards missing or broken (the first 1000)."""
    shards_failed: int
    samples_failed: int
    """Samples with a missing member or undecodable audio."""

    @property
    def missing(self) -> int | None:
        return None if self.expected is None else self.expected - self.read

    def describe(self) -> str:
        """One line: how much was read and what failed."""
        parts = [f"read {self.read} of the {self.expected} samples the shard index lists"
                 if self.expected is not None else f"read {self.read} samples"]
        if self.shards_failed:
            more = f" and {self.shards_failed - 3} more" if self.shards_failed > 3 else ""
            parts.append(f"{self.shards_failed} shard(s) missing or broken: "
                         f"{', '.join(self.failed_shards[:3])}{more}")
        if self.samples_failed:
            parts.append(f"{self.samples_failed} sample(s) could not be decoded")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "read": self.read, "missing": self.missing,
                "shards_failed": self.shards_failed, "failed_shards": self.failed_shards,
                "samples_failed": self.samples_failed}


@dataclass
class Batch:
    """A batch of utterances with each sample's manifest row; ``labelled`` and ``attributes`` are
    read from the rows once, for the loop's targets."""

    keys: list[str]
    audio: torch.Tensor
    """[B, T] float32 at 16 kHz, zero-padded at the end."""
    lengths: torch.Tensor
    """[B] int64: the valid samples of each row."""
    meta: list[dict[str, Any]]
    """Each sample's manifest row (its ``.json`` member)."""
    source: torch.Tensor | None = None
    """[B] int64: index of the :class:`StreamSource` each row came from."""
    labelled: torch.Tensor = field(init=False)
    """[B] bool."""
    attributes: torch.Tensor = field(init=False)
    """[B, 3] float32 (arousal, valence, dominance), NaN where missing."""

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = torch.zeros(len(self.keys), dtype=torch.int64)
        self.labelled = torch.tensor([bool(m.get("labelled")) for m in self.meta], dtype=torch.bool)
        self.attributes = torch.tensor(
            [[math.nan if m.get(a) is None else float(m[a]) for a in ATTRIBUTES] for m in self.meta],
            dtype=torch.float32).reshape(len(self.meta), len(ATTRIBUTES))

    def __len__(self) -> int:
        return len(self.keys)

    def _map_tensors(self, fn: Any) -> Batch:
        out = copy.copy(self)
        for name in ("audio", "lengths", "source", "labelled", "attributes"):
            setattr(out, name, fn(getattr(self, name)))
        return out

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map_tensors(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:  # called by DataLoader(pin_memory=True) and the stream
        return self._map_tensors(lambda t: t.pin_memory())


# --- shard specifications -------------------------------------------------------------------

def resolve_shards(spec: ShardSpec) -> list[str]:
    """Shard locations from a directory (the shards its ``index.json`` lists, else its
    ``shard-*.tar``, sorted), a glob, brace notation (``a/shard-{000000..000009}.tar``), a URL
    (``s3://``, ``pipe:``, ``http(s)://``, brace notation allowed; one ending in ``/`` or
    ``/index.json`` is a remote shard set: the shards its index lists) or a list of those. Named
    local shards that are missing are an error naming them; shards an index lists but that
    are gone are read as failed, so the pass reports them (:meth:`ShardStream.shortfall`)."""

    if isinstance(spec, (list, tuple)):
        if not spec:
            raise StreamError("empty shard list")
        return [url for item in spec for url in resolve_shards(item)]
    text = os.fspath(spec)  # type: ignore[arg-type]
    if not text:
        raise StreamError("empty shard specification")
    if is_url(text):
        if text.endswith(("/", "/" + INDEX)) and not text.startswith("pipe:"):
            listed = read_index(text).shards  # a remote shard set: the shards its index lists
            if not listed:
                raise StreamError(f"{text}: its {INDEX} lists no shards")
            return listed
        return list(braceexpand(text))
    found: list[str] = []
    missing: list[str] = []
    for item in braceexpand(os.path.expanduser(text)):
        path = Path(item)
        if path.is_dir() and (path / INDEX).is_file():
            listed = read_index(path).shards
            if not listed:
                raise StreamError(f"{path}: its {INDEX} lists no shards")
            found.extend(listed)
        elif path.is_dir():
            shards = sorted(path.glob("shard-*.tar"))
            if not shards:
                raise StreamError(f"{path}: no shard-*.tar files in this directory "
                                  f"(build them with `ssl-ser shards build`)")
            found.extend(str(p) for p in shards)
        elif _GLOB_CHARS & set(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise StreamError(f"{item}: the pattern matches no files")
            found.extend(matches)
        elif path.is_file():
            found.append(str(path))
        else:
            missing.append(item)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise StreamError(f"shard(s) not found: {', '.join(missing[:3])}{more}")
    return found


def count_samples(urls: Sequence[str]) -> int | None:
    """Samples in these shards according to the ``index.json`` next to them (local or URL,
    not ``pipe:`` commands); None if unknown."""

    by_dir: dict[str, list[str]] = {}
    for url in urls:
        if url.startswith("pipe:"):
            return None  # where its index lies is the command's business
        parent, _, name = url.rpartition("/")
        by_dir.setdefault(parent or ".", []).append(name)
    total = 0
    for parent, names in by_dir.items():
        try:
            index = read_index(parent)
        except ShardError:
            return None
        entries = {e["name"]: e for e in index.raw["shards"]}
        for name in names:
            if name not in entries:
                return None
            total += int(entries[name]["samples"])
    return total


def resolve_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size): explicit arguments, else torch.distributed, else RANK/WORLD_SIZE."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise StreamError("give both rank and world_size, or neither")
    elif torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
    elif "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    else:
        rank, world_size = 0, 1
    if world_size < 1 or not 0 <= rank < world_size:
        raise StreamError(f"invalid rank {rank} for world size {world_size}")
    return rank, world_size


# --- the per-worker pipeline ----------------------------------------------------------------

@dataclass(frozen=True)
class _Settings:
    mode: Mode
    urls: tuple[tuple[str, ...], ...]
    """Shard locations per source."""
    weights: tuple[float, ...]
    batch_size: int
    crop: int | None
    """Fixed length in samples (crop or pad), or None."""
    max_len: int | None
    """Cut longer utterances to this many samples (when ``crop`` is None)."""
    bucketing: bool
    bucket_batches: int
    shuffle: bool
    shuffle_buffer: int
    batches_per_rank: int | None
    seed: int
    epoch: int
    rank: int
    world_size: int


@dataclass
class _Sample:
    key: str
    wave: torch.Tensor
    meta: dict[str, Any]
    source: int


class _ShardReader(torch.utils.data.IterableDataset):
    """What runs inside each DataLoader worker. Yields ``("batch", worker, stats, packed)``
    (a batch as :func:`_unpack` takes it) and, once at the end, ``("done", worker, stats, None)``."""

    def __init__(self, settings: _Settings) -> None:
        super().__init__()
        self.s = settings

    def __iter__(self) -> Iterator[tuple[str, int, StreamStats, _Packed | None]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        stats = StreamStats()
        if self.s.mode == "train":
            batches = self._train_batches(worker, workers, stats)
        else:
            batches = self._exact_batches(worker, workers, stats)
        for batch in batches:
            stats.batches += 1
            yield "batch", worker, copy.deepcopy(stats), batch
        yield "done", worker, stats, None

    def _rng(self, worker: int, *tag: object) -> random.Random:
        # str seeds are hashed with sha512: stable across processes and PYTHONHASHSEED
        return random.Random("/".join(map(str, (self.s.seed, self.s.epoch, self.s.rank, worker) + tag)))

    # train: resampled shards, fixed batch count -------------------------------------------
    def _train_batches(self, worker: int, workers: int, stats: StreamStats) -> Iterator[_Packed]:
        total = self.s.batches_per_rank or 0
        mine = total // workers + (1 if worker < total % workers else 0)
        if mine == 0:
            return
        streams = []
        for i, urls in enumerate(self.s.urls):
            raw = self._counted(self._resampled(urls, self._rng(worker, "shards", i), stats), stats)
            streams.append(_shuffled(raw, self.s.shuffle_buffer if self.s.shuffle else 0,
                                     self._rng(worker, "shuffle", i)))
        mix = self._rng(worker, "mix")
        crop_rng = self._rng(worker, "crop")

        def mixed() -> Iterator[_Sample]:
            failures = 0  # an endless stream of undecodable samples must not hang training
            while True:
                i = mix.choices(range(len(streams)), weights=self.s.weights)[0] if len(streams) > 1 else 0
                sample = self._decode(next(streams[i]), i, crop_rng, stats)
                if sample is not None:
                    failures = 0
                    yield sample
                elif (failures := failures + 1) >= 1000:
                    raise StreamError(f"1000 samples in a row could not be decoded "
                                      f"({stats.samples_failed} so far); see the warnings above")

        batches = self._batches(mixed(), self._rng(worker, "buckets"))
        for _ in range(mine):
            yield next(batches)

    def _resampled(self, urls: Sequence[str], rng: random.Random, stats: StreamStats
                   ) -> Iterator[dict[str, Any]]:
        empty_draws = 0
        while True:
            url = urls[rng.randrange(len(urls))]
            got = 0
            for raw in _read_shard(url, stats, count=True):
                got += 1
                yield raw
            empty_draws = 0 if got else empty_draws + 1
            if empty_draws >= max(20, 3 * len(urls)):
                raise StreamError(f"{empty_draws} shard draws in a row gave no samples (last: "
                                  f"{url}); are the shards all corrupt? "
                                  f"{stats.shards_failed} failed so far")

    # exact: each sample once ---------------------------------------------------------------
    def _exact_batches(self, worker: int, workers: int, stats: StreamStats) -> Iterator[_Packed]:
        readers = self.s.world_size * workers
        slot = self.s.rank * workers + worker
        shards = [(url, i) for i, urls in enumerate(self.s.urls) for url in urls]
        if self.s.shuffle:  # the same permutation on every reader: seeded without rank/worker
            random.Random(f"{self.s.seed}/{self.s.epoch}/shard-order").shuffle(shards)
        crop_rng = self._rng(worker, "crop")

        def raw_samples() -> Iterator[tuple[dict[str, Any], int]]:
            if len(shards) >= readers:
                for url, source in shards[slot::readers]:
                    for raw in _read_shard(url, stats, count=True, warn=False):
                        yield raw, source
            else:  # fewer shards than readers: all read everything, keep every n-th sample
                position = 0
                for number, (url, source) in enumerate(shards):
                    for raw in _read_shard(url, stats, count=number % readers == slot, warn=False):
                        if position % readers == slot:
                            yield raw, source
                        position += 1

        def samples() -> Iterator[_Sample]:
            stream: Iterator[Any] = ((r, s) for r, s in self._counted(raw_samples(), stats))
            if self.s.shuffle:
                stream = _shuffled(stream, self.s.shuffle_buffer, self._rng(worker, "shuffle"))
            for raw, source in stream:
                sample = self._decode(raw, source, crop_rng, stats)
                if sample is not None:
                    yield sample

        yield from self._batches(samples(), self._rng(worker, "buckets"))

    # shared stages -------------------------------------------------------------------------
    @staticmethod
    def _counted(stream: Iterator[Any], stats: StreamStats) -> Iterator[Any]:
        for item in stream:
            stats.samples_read += 1
            yield item

    def _decode(self, raw: dict[str, Any], source: int, rng: random.Random,
                stats: StreamStats) -> _Sample | None:

        key = raw.get("__key__", "?")
        limit = self.s.crop or self.s.max_len
        try:
            meta = json.loads(raw["json"])
            # decodes only the frames kept, with the same draw from rng as cutting afterwards
            data, rate = audio.decode_clip(bytes(raw["flac"]), limit,
                                           lambda excess: self._crop_start(excess, rng))
        except KeyError as err:
            stats.samples_failed += 1
            log.warning("sample %s in %s has no %s member; skipped", key, raw.get("__url__"), err)
            return None
        except Exception as err:
            stats.samples_failed += 1
            log.warning("sample %s in %s cannot be decoded (%s); skipped", key, raw.get("__url__"), err)
            return None
        if data.dtype == np.int16:  # 16-bit 16 kHz mono, as shards hold: scaled on unpacking
            return _Sample(key, torch.from_numpy(data[0]), meta, source)
        # anything else (a hand-made shard) is converted
        wave = torch.from_numpy(data[0]) if data.shape[0] == 1 else audio.to_mono(data)
        wave = audio.resample(wave, rate, SAMPLE_RATE)
        if limit is not None and wave.numel() > limit:  # only audio that was not at 16 kHz
            offset = self._crop_start(wave.numel() - limit, rng)
            wave = wave[offset:offset + limit].clone()  # do not keep the whole utterance alive
        return _Sample(key, wave, meta, source)

    def _crop_start(self, excess: int, rng: random.Random) -> int:
        return rng.randint(0, excess) if self.s.mode == "train" else 0  # exact: from the start

    def _batches(self, samples: Iterator[_Sample], rng: random.Random) -> Iterator[_Packed]:
        size = self.s.batch_size
        if not self.s.bucketing:
            while chunk := _take(samples, size):
                yield self._collate(chunk)
            return
        # length bucketing: sort a buffer of several batches by length, so rows of a batch have
        # similar lengths and little padding; batch order is then shuffled in train mode
        while buffer := _take(samples, size * self.s.bucket_batches):
            buffer.sort(key=lambda s: (s.wave.numel(), s.key))
            chunks = [buffer[i:i + size] for i in range(0, len(buffer), size)]
            if self.s.mode == "train":
                rng.shuffle(chunks)
            for chunk in chunks:
                yield self._collate(chunk)

    def _collate(self, samples: list[_Sample]) -> _Packed:
        waves = [s.wave for s in samples]
        if any(w.dtype != torch.int16 for w in waves):  # one float row makes the batch float
            waves = [w.float() * audio.PCM16_SCALE if w.dtype == torch.int16 else w for w in waves]
        padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
        if self.s.crop is not None and padded.shape[1] < self.s.crop:
            padded = torch.nn.functional.pad(padded, (0, self.s.crop - padded.shape[1]))
        return ([s.key for s in samples], padded, [w.numel() for w in waves],
                [s.meta for s in samples], [s.source for s in samples])


# A batch crosses from a DataLoader worker to the trainer as one tensor (the audio, in shared
# memory) plus plain lists (keys, lengths, meta, sources): every tensor costs the receiver a
# socket round trip to fetch its file descriptor, which at 5 tensors a batch took more CPU than
# the rest of the main process; and the audio travels as int16 when every row is 16-bit PCM
# (as shards hold), since creating and filling the shared memory costs per byte.
_Packed = tuple[list[str], torch.Tensor, list[int], list[dict[str, Any]], list[int]]


def _unpack(packed: _Packed, *, pin: bool = False) -> Batch:
    """The :class:`Batch` of a packed one; ``pin``: in page-locked memory (for the GPU), the
    int16 audio converted straight into it."""
    keys, wave, lengths, meta, source = packed  # labelled and attributes are derived from meta
    if wave.dtype == torch.int16:  # exactly what a float32 decode gives; numpy: one thread
        # (torch would wake its intra-op pool for this, costly on a busy machine)
        out = torch.empty(wave.shape, dtype=torch.float32, pin_memory=pin)
        np.multiply(wave.numpy(), np.float32(audio.PCM16_SCALE), out=out.numpy())
        wave = out
    batch = Batch(keys=keys, audio=wave, lengths=torch.tensor(lengths, dtype=torch.int64),
                  meta=meta, source=torch.tensor(source, dtype=torch.int64))
    return batch.pin_memory() if pin else batch  # a pinned tensor pins as itself, uncopied


def _take(iterator: Iterator[Any], n: int) -> list[Any]:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


def _shuffled(stream: Iterable[Any], bufsize: int, rng: random.Random) -> Iterator[Any]:
    # deferred: webdataset only inside stream readers
    import webdataset as wds

    if bufsize <= 1:
        return iter(stream)
    return iter(wds.shuffle(bufsize, initial=bufsize, rng=rng)(iter(stream)))


def _read_shard(url: str, stats: StreamStats, *, count: bool, warn: bool = True
                ) -> Iterator[dict[str, Any]]:
    """Samples (dicts of raw members) of one shard. A shard that cannot be opened or breaks off
    is counted (when ``count``: exactly one reader owns each shard's counts) and logged when
    ``warn`` (exact passes say it once, through :meth:`ShardStream.shortfall`)."""
    # deferred: webdataset only inside stream readers
    from webdataset.handlers import reraise_exception
    from webdataset.tariterators import group_by_keys, tar_file_expander

    def failed(err: BaseException) -> None:
        if count and url not in stats.failed_shards:  # a resampled shard fails once, not per draw
            stats.shards_failed += 1
            if len(stats.failed_shards) < _MAX_FAILED_NAMES:
                stats.failed_shards.append(url)
            if warn:
                log.warning("skipping the rest of shard %s: %s", url, _short(err))

    try:
        stream = open_url(url)
    except Exception as err:
        failed(err)
        return
    if count:
        stats.shards_opened += 1
    try:
        files = tar_file_expander([{"url": url, "stream": stream}], handler=reraise_exception)
        yield from group_by_keys(files, handler=reraise_exception)
    except Exception as err:
        failed(err)
    finally:
        try:
            stream.close()
        except Exception as err:  # a pipe: command that failed reports it on close
            failed(err)


def _short(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return "missing"
    text = err.strerror if isinstance(err, OSError) and err.strerror else (
        str(err.args[0]) if err.args else repr(err))
    return f"{type(err).__name__}: {text}"[:300]


# --- the stream object ----------------------------------------------------------------------

class ShardStream:
    """An epoch-aware iterable of :class:`Batch` over a DataLoader of shard readers.

    One stream per epoch (:func:`make_stream`'s ``epoch`` seeds its order and crops);
    :attr:`stats` holds the counts of the current or last pass.
    """

    def __init__(self, settings: _Settings, *, num_workers: int, pin_memory: bool,
                 prefetch_factor: int | None, expected_samples: int | None = None) -> None:
        self.settings = settings
        self.expected_samples = expected_samples
        """Exact mode, one rank: the samples the shard sets' indexes list (None: unknown)."""
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.prefetch_factor = prefetch_factor
        self._worker_stats: dict[int, StreamStats] = {}

    @property
    def epoch(self) -> int:
        return self.settings.epoch

    def __len__(self) -> int:
        if self.settings.batches_per_rank is None:
            raise TypeError("an exact-mode stream has no fixed length (ranks may differ)")
        return self.settings.batches_per_rank

    @property
    def stats(self) -> StreamStats:
        total = StreamStats()
        for stats in self._worker_stats.values():
            total = total + stats
        return total

    def shortfall(self) -> Shortfall | None:
        """After a whole exact-mode pass: what it could not read (missing or broken shards,
        undecodable samples, fewer samples than the index lists), or None if it read them all.
        Exact passes do not log broken shards one by one: their user reports this instead."""
        stats = self.stats
        read = stats.samples_read - stats.samples_failed
        if (not stats.shards_failed and not stats.samples_failed
                and self.expected_samples in (None, read)):
            return None
        return Shortfall(expected=self.expected_samples, read=read,
                         failed_shards=list(stats.failed_shards), shards_failed=stats.shards_failed,
                         samples_failed=stats.samples_failed)

    def __iter__(self) -> Iterator[Batch]:
        self._worker_stats = {}
        # pinned by _unpack, not by the DataLoader, which would pin the int16 copy; only with
        # CUDA, as the DataLoader decides
        pin = self.pin_memory and torch.cuda.is_available()
        loader = torch.utils.data.DataLoader(
            _ShardReader(self.settings), batch_size=None, num_workers=self.num_workers,
            collate_fn=_identity, pin_memory=False,
            prefetch_factor=self.prefetch_factor if self.num_workers else None,
            persistent_workers=False)
        for kind, worker, stats, packed in loader:
            self._worker_stats[worker] = stats
            if kind == "batch":
                assert packed is not None
                yield _unpack(packed, pin=pin)


def _identity(item: Any) -> Any:
    return item


def make_stream(shards: ShardSpec | None = None, *, sources: Sequence[StreamSource] | None = None,
                mode: Mode = "train", batch_size: int = 32, crop_seconds: float | None = None,
                max_seconds: float | None = None, bucketing: bool = False, bucket_batches: int = 8,
                shuffle: bool | None = None,
                shuffle_buffer: int = 1000, samples_per_epoch: int | None = None, seed: int = 0,
                epoch: int = 0, rank: int | None = None, world_size: int | None = None,
                num_workers: int = 2, pin_memory: bool = False,
                prefetch_factor: int | None = 2) -> ShardStream:
    """A stream of :class:`Batch` over ``shards`` (or several weighted ``sources``).

    ``crop_seconds``: every row is cut (at a random place in train mode, from the start in
    exact mode) or zero-padded to exactly this length; ``lengths``
    keep the true length. Otherwise rows are padded to the longest in the batch, utterances
    longer than ``max_seconds`` are cut, and ``bucketing`` groups similar lengths (sorting a
    buffer of ``bucket_batches`` batches) to limit padding. ``samples_per_epoch`` (train mode)
    defaults to the sources' total from their ``index.json``. ``shuffle`` (default: on in
    train mode, off in exact mode) permutes shard order and samples through a buffer of
    ``shuffle_buffer``.
    """
    if (shards is None) == (sources is None):
        raise StreamError("give either shards or sources")
    if sources is None:
        sources = [StreamSource(shards=shards)]  # type: ignore[arg-type]
    if not sources:
        raise StreamError("sources is empty")
    if mode not in ("train", "exact"):
        raise StreamError(f"mode must be 'train' or 'exact', not {mode!r}")
    if batch_size < 1 or num_workers < 0 or bucket_batches < 1:
        raise StreamError("batch_size and bucket_batches must be >= 1 and num_workers >= 0")
    for name, value in (("crop_seconds", crop_seconds), ("max_seconds", max_seconds)):
        if value is not None and value <= 0:
            raise StreamError(f"{name} must be positive (got {value})")
    rank, world_size = resolve_rank(rank, world_size)
    urls = tuple(tuple(resolve_shards(src.shards)) for src in sources)

    weights: tuple[float, ...] = ()
    batches_per_rank = expected = None
    if mode == "exact" and world_size == 1:  # a rank's share is not what the index counts
        counts = [count_samples(u) for u in urls]
        expected = None if None in counts else sum(c for c in counts if c is not None)
    if mode == "train":
        counts = [count_samples(u) for u in urls]
        if any(src.weight is None for src in sources) and len(sources) > 1 and None in counts:
            raise StreamError("a source without a weight needs its index.json to weigh it by size; "
                              "give every StreamSource a weight")
        weights = tuple(float(src.weight) if src.weight is not None else float(c or 1)
                        for src, c in zip(sources, counts))
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise StreamError(f"source weights must be >= 0 and not all 0 (got {list(weights)})")
        if samples_per_epoch is None:
            if None in counts:
                raise StreamError("cannot find index.json next to the shards to count them; "
                                  "pass samples_per_epoch")
            samples_per_epoch = sum(c for c in counts if c is not None)
        if samples_per_epoch < 1:
            raise StreamError(f"samples_per_epoch must be >= 1 (got {samples_per_epoch})")
        batches_per_rank = math.ceil(samples_per_epoch / (world_size * batch_size))

    settings = _Settings(
        mode=mode, urls=urls, weights=weights, batch_size=batch_size,
        crop=None if crop_seconds is None else max(1, round(crop_seconds * SAMPLE_RATE)),
        max_len=None if max_seconds is None else max(1, round(max_seconds * SAMPLE_RATE)),
        bucketing=bucketing, bucket_batches=bucket_batches,
        shuffle=(mode == "train") if shuffle is None else shuffle,
        shuffle_buffer=shuffle_buffer, batches_per_rank=batches_per_rank, seed=seed, epoch=epoch,
        rank=rank, world_size=world_size)
    return ShardStream(settings, num_workers=num_workers, pin_memory=pin_memory,
                       prefetch_factor=prefetch_factor, expected_samples=expected)
