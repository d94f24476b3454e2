"""Manifest in, verified WebDataset shards out.

Every manifest row is decoded, downmixed, resampled to 16 kHz and stored as two tar members,
``{key}.flac`` (16-bit FLAC) and ``{key}.json`` (the manifest row, with ``extra.num_samples``
at 16 kHz), in ``OUT/shard-%06d.tar``. Rows that cannot be used (missing, unreadable, empty,
too short, non-finite, silent or constant audio, malformed manifest lines) go to
``OUT/rejects.jsonl`` with their reason; ``rows = samples + rejected`` always holds and is
stored in ``OUT/index.json`` with the shard list and label/speaker/corpus histograms.

Determinism: rows are encoded in parallel but written in manifest order by one writer that
starts a new shard when ``max_count`` or ``max_size`` would be exceeded, with fixed tar
metadata, so a manifest always gives the same bytes, whatever the worker count.

Atomicity and resuming: a shard is written under ``shard-N.tar.tmp`` and renamed when
complete, then a small record (its rows, sha256, rejects, histograms) goes to
``OUT/.progress/``. A rerun of an interrupted build keeps every leading shard whose record
matches this manifest and settings and whose bytes still match the record, and continues
after the last one; the result is identical to an uninterrupted build. ``index.json`` is
written last, and a finished set is only replaced with ``overwrite``. A write that fails (a
full disk) removes its temporary file and stops with one line; the rerun continues the same
way. One build at a time may write to a directory: a second one is refused (a lock on it).

Why one module of ~450 lines: building is one transaction (encode in workers, write in
manifest order, record progress, resume, lock, write the index last) whose invariants span
these steps; the index format and reading it live in :mod:`ssl_ser.data.shard_index`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ssl_ser import SAMPLE_RATE, audio
from ssl_ser.data.manifest import ManifestError, Utterance
from ssl_ser.data.shard_index import (
    FORMAT_VERSION,
    HISTOGRAMS,
    INDEX,
    REJECTS,
    SHARD_GLOB,
    SHARD_NAME,
    Reject,
    ShardError,
    ShardRecord,
    histogram_value,
    make_index,
    sha256,
)
from ssl_ser.files import atomic_write, locked_directory

PROGRESS = ".progress"
MAX_COUNT = 5000
MAX_SIZE = 512 * 1024**2
MIN_SECONDS = 0.1
_TAR_BLOCK = 512
_MTIME = 0  # fixed tar metadata: the same rows give the same bytes



@dataclass
class BuildReport:
    out_dir: Path
    rows: int
    samples: int
    rejected: int
    shards: list[str]
    reused: int
    """Complete shards kept from an earlier, interrupted run of the same build."""
    seconds_of_audio: float
    reasons: dict[str, int]
    elapsed: float

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "none"
        reused = f" ({self.reused} reused from an interrupted run)" if self.reused else ""
        return (f"{self.rows} rows = {self.samples} samples written + {self.rejected} rejected "
                f"[{reasons}]; {len(self.shards)} shard(s){reused}, "
                f"{self.seconds_of_audio / 3600:.3f} h of audio, in {self.out_dir} "
                f"({self.elapsed:.1f} s)")


# --- per-row work (runs in worker processes) ------------------------------------------------

@dataclass
class _Encoded:
    row: int
    utt: Utterance
    flac: bytes
    meta: bytes
    num_samples: int


def _encode_row(args: tuple[int, Utterance, float]) -> _Encoded | Reject:
    """Decode, check and encode one row. Never raises: every failure is a :class:`Reject`."""
    row, utt, min_seconds = args
    try:
        return _encode_checked(row, utt, min_seconds)
    except Exception as err:  # a bug or an exotic file must not kill a long build
        return Reject(row + 1, utt.key, utt.audio, "error", f"{type(err).__name__}: {err}")


def _encode_checked(row: int, utt: Utterance, min_seconds: float) -> _Encoded | Reject:

    def reject(reason: str, detail: str) -> Reject:
        return Reject(row + 1, utt.key, utt.audio, reason, detail)

    try:  # the checks every entry point shares (ssl_ser.audio.check)
        checked = audio.load_checked(utt.audio, min_seconds=min_seconds)
    except audio.AudioRejected as err:
        return reject(err.reason, err.detail)
    wave = checked.wave
    num_samples = int(wave.numel())
    extra = {**utt.extra, "num_samples": num_samples}
    if checked.peak is not None:  # float audio beyond full scale, scaled down instead of clipped
        extra["normalised_from_peak"] = round(checked.peak, 6)
    row_out = dataclasses.replace(utt, extra=extra)
    return _Encoded(row, utt, audio.encode_flac(wave, SAMPLE_RATE),
                    row_out.to_json().encode("utf-8"), num_samples)


def _init_worker() -> None:

    torch.set_num_threads(1)  # one process per core; also keeps resampling bit-identical


@contextmanager
def _single_thread() -> Iterator[None]:

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- manifest reading ----------------------------------------------------------------------

def _digest(manifest: Path) -> tuple[str, int]:
    """sha256 of the manifest's bytes and its number of rows (non-empty lines)."""
    if not manifest.is_file():
        raise ShardError(f"manifest not found: {manifest}")
    digest, rows = hashlib.sha256(), 0
    with manifest.open("rb") as handle:
        for line in handle:
            digest.update(line)
            rows += bool(line.strip())
    return digest.hexdigest(), rows


def _iter_rows(manifest: Path) -> Iterator[Utterance | Reject]:
    """Every non-empty manifest line as an :class:`Utterance` or a :class:`Reject`, read lazily
    (manifests of millions of rows stay on disk). Malformed lines are rejects, not errors:
    nothing is dropped."""
    seen: set[str] = set()
    with manifest.open("rb") as handle:
        lines = (line for line in handle if line.strip())
        for index, raw in enumerate(lines):
            where = f"{manifest}:{index + 1}"
            key = audio_path = None
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise ManifestError(f"{where}: each line must be a JSON object")
                key = data.get("key") if isinstance(data.get("key"), str) else None
                audio_path = data.get("audio") if isinstance(data.get("audio"), str) else None
                utt = Utterance.from_dict(data, where)
            except (ValueError, ManifestError) as err:  # JSONDecodeError and bad UTF-8 included
                yield Reject(index + 1, key, audio_path, "bad_row", str(err))
                continue
            if utt.key in seen:
                yield Reject(index + 1, utt.key, utt.audio, "duplicate_key",
                             f"key {utt.key!r} already used by an earlier row")
                continue
            seen.add(utt.key)
            yield utt


# --- writing ------------------------------------------------------------------------------

def _member_size(nbytes: int) -> int:
    return _TAR_BLOCK + -(-nbytes // _TAR_BLOCK) * _TAR_BLOCK


class _ShardWriter:
    """Writes shards in order: tmp file, fsync, rename, then the progress record."""

    def __init__(self, out_dir: Path, build: str, start_index: int, start_row: int,
                 max_count: int, max_size: int) -> None:
        self.out_dir, self.build = out_dir, build
        self.index, self.start_row = start_index, start_row
        self.max_count, self.max_size = max_count, max_size
        self.records: list[ShardRecord] = []
        self._tar: Any = None
        self._reset()

    def _reset(self) -> None:
        self.count = 0
        self.size = 2 * _TAR_BLOCK  # end-of-archive marker
        self.seconds = 0.0
        self.labelled = 0
        self.rejects: list[dict[str, Any]] = []
        self.hist: dict[str, Counter[str]] = {k: Counter() for k in HISTOGRAMS}

    @property
    def tmp_path(self) -> Path:
        return self.out_dir / (SHARD_NAME.format(self.index) + ".tmp")

    def add(self, item: _Encoded) -> None:
        size = _member_size(len(item.flac)) + _member_size(len(item.meta))
        if self._tar is not None and (self.count >= self.max_count
                                      or self.size + size > self.max_size):
            self.close(end_row=item.row)
        if self._tar is None:
            # deferred: webdataset only inside stream readers
            import webdataset as wds

            self._file = open(self.tmp_path, "wb")
            self._tar = wds.TarWriter(self._file, user="ssl-ser", group="ssl-ser", mode=0o444,
                                      encoder=False, mtime=_MTIME, format="PAX_FORMAT")
        self._tar.write({"__key__": item.utt.key, "flac": item.flac, "json": item.meta})
        self.count += 1
        self.size += size
        self.seconds += item.num_samples / SAMPLE_RATE
        self.labelled += item.utt.labelled
        for name in self.hist:
            value = histogram_value(item.utt, name)
            if value is not None:
                self.hist[name][value] += 1

    def reject(self, reject: Reject) -> None:
        self.rejects.append(reject.to_dict())

    def close(self, end_row: int) -> None:
        """Finish the open shard (covering rows up to ``end_row``), or hold pending rejects."""
        if self._tar is None:
            return
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._tar = None
        name = SHARD_NAME.format(self.index)
        os.replace(self.tmp_path, self.out_dir / name)
        record = ShardRecord(
            name=name, build=self.build, rows=(self.start_row, end_row), samples=self.count,
            seconds=round(self.seconds, 6), bytes=(self.out_dir / name).stat().st_size,
            sha256=sha256(self.out_dir / name), rejects=self.rejects,
            histograms={k: dict(sorted(v.items())) for k, v in self.hist.items()},
            labelled=self.labelled)
        atomic_write(self.out_dir / PROGRESS / (name + ".json"), record.to_json())
        self.records.append(record)
        self.index += 1
        self.start_row = end_row
        self._reset()

    def abort(self) -> None:
        """Drop the open shard. Closing may fail again (a full disk); the tmp file goes anyway."""
        if self._tar is not None:
            tar, self._tar = self._tar, None
            with contextlib.suppress(OSError, ValueError):
                tar.close()  # tarfile would otherwise finish it at garbage collection
            with contextlib.suppress(OSError):
                self._file.close()
            self.tmp_path.unlink(missing_ok=True)


def build_shards(manifest: str | Path, out_dir: str | Path, *, max_count: int = MAX_COUNT,
                 max_size: int = MAX_SIZE, workers: int | None = None,
                 min_seconds: float = MIN_SECONDS, strict: bool = False, overwrite: bool = False,
                 progress: bool = True) -> BuildReport:
    """Build (or finish building) the shard set of ``manifest`` in ``out_dir``.

    ``workers`` encoding processes (default: every CPU); ``max_count`` samples and about
    ``max_size`` bytes per shard (one sample bigger than ``max_size`` gets a shard of its own).
    ``strict`` raises :class:`ShardError` at the first reject instead of recording it.
    """
    started = time.perf_counter()
    manifest, out_dir = Path(manifest), Path(out_dir)
    if max_count < 1 or max_size < 1:
        raise ShardError(f"max_count and max_size must be positive (got {max_count}, {max_size})")
    if min_seconds < 0:
        raise ShardError(f"min_seconds must be >= 0 (got {min_seconds})")
    workers = (os.cpu_count() or 1) if workers is None else max(1, workers)
    manifest_sha, n_rows = _digest(manifest)
    settings = dict(max_count=max_count, max_size=max_size, min_seconds=min_seconds)
    build = hashlib.sha256(json.dumps(
        dict(manifest=manifest_sha, version=FORMAT_VERSION, sample_rate=SAMPLE_RATE, **settings),
        sort_keys=True).encode()).hexdigest()[:16]
    if out_dir.exists() and not out_dir.is_dir():
        raise ShardError(f"{out_dir} exists and is not a directory")
    with _sole_writer(out_dir):
        try:
            return _build_locked(manifest, out_dir, manifest_sha, n_rows, build, settings,
                                 workers=workers, strict=strict, overwrite=overwrite,
                                 progress=progress, started=started)
        except OSError as err:  # a full disk, a vanished mount: the tmp files are gone already
            where = f" ({err.filename})" if err.filename else ""
            hint = ("free some space" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
                    else "fix that")
            raise ShardError(f"{out_dir}: {err.strerror or err}{where} while writing the shard set; "
                             f"complete shards are kept: {hint} and rerun the same command to "
                             f"continue") from None


@contextmanager
def _sole_writer(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` against a second build into it, which would interleave its shards with ours."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def refuse() -> None:
        raise ShardError(f"{out_dir}: another `shards build` is writing there; wait for it "
                         f"to finish, or build into another directory") from None

    with locked_directory(out_dir, on_busy=refuse):
        yield


def _build_locked(manifest: Path, out_dir: Path, manifest_sha: str, n_rows: int, build: str,
                  settings: dict[str, Any], *, workers: int, strict: bool, overwrite: bool,
                  progress: bool, started: float) -> BuildReport:
    max_count, max_size, min_seconds = (settings["max_count"], settings["max_size"],
                                        settings["min_seconds"])
    _prepare_out_dir(out_dir, overwrite)
    reused = _reusable_records(out_dir, build)
    _remove_stale(out_dir, keep=len(reused))
    start_row = reused[-1].rows[1] if reused else 0
    if strict:
        for record in reused:
            if record.rejects:
                raise ShardError(_strict_message(Reject(**record.rejects[0]), manifest))

    # deferred: only for progress bars
    from tqdm import tqdm

    writer = _ShardWriter(out_dir, build, len(reused), start_row, max_count, max_size)
    bar = tqdm(total=n_rows, initial=start_row, unit="utt", desc=f"shards {out_dir.name}",
               disable=not progress, dynamic_ncols=True)
    rejected = sum(len(r.rejects) for r in reused)
    # rows go to the workers a window at a time: bounded memory, and results come back in order
    window = 64 * workers
    try:
        with _encoder(workers) as encode:
            # rows before start_row are still parsed: duplicate keys are found across the resume
            numbered = enumerate(_iter_rows(manifest))
            while rows := list(itertools.islice(numbered, window)):
                chunk = [(i, row) for i, row in rows if i >= start_row]
                results = iter(encode([(i, row, min_seconds) for i, row in chunk
                                       if isinstance(row, Utterance)]))
                for _, row in chunk:
                    item = row if isinstance(row, Reject) else next(results)
                    if isinstance(item, Reject):
                        if strict:
                            raise ShardError(_strict_message(item, manifest))
                        writer.reject(item)
                        rejected += 1
                        bar.set_postfix(rejected=rejected, refresh=False)
                    else:
                        writer.add(item)
                    bar.update()
        writer.close(end_row=n_rows)
    except BaseException:
        writer.abort()  # complete shards stay; a rerun resumes after them
        raise
    finally:
        bar.close()

    records = reused + writer.records
    trailing = writer.rejects  # rejects after the last sample when there is no open shard
    all_rejects = [r for rec in records for r in rec.rejects] + trailing
    atomic_write(out_dir / REJECTS, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                             for r in all_rejects))
    index = make_index(manifest, manifest_sha, n_rows, build, settings, records, all_rejects)
    atomic_write(out_dir / INDEX, json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(out_dir / PROGRESS, ignore_errors=True)
    samples = index["totals"]["samples"]
    if samples + len(all_rejects) != n_rows:  # the invariant the whole design promises
        raise AssertionError(f"count mismatch: {samples} + {len(all_rejects)} != {n_rows}")
    return BuildReport(out_dir=out_dir, rows=n_rows, samples=samples,
                       rejected=len(all_rejects), shards=[r.name for r in records],
                       reused=len(reused), seconds_of_audio=index["totals"]["seconds"],
                       reasons=index["rejects"]["reasons"],
                       elapsed=time.perf_counter() - started)


@contextmanager
def _encoder(workers: int) -> Iterator[Any]:
    """A function mapping tasks to results in order: a process pool, or in-process for 1."""
    if workers <= 1:
        with _single_thread():
            yield lambda tasks: map(_encode_row, tasks)
        return
    with multiprocessing.get_context().Pool(workers, initializer=_init_worker) as pool:
        yield lambda tasks: pool.imap(_encode_row, tasks, chunksize=4)


def _strict_message(reject: Reject, manifest: Path) -> str:
    return (f"{manifest}:{reject.row}: {reject.key or '<no key>'} ({reject.audio}): "
            f"{reject.reason}: {reject.detail} (--strict stops at the first bad row; without it "
            f"bad rows go to rejects.jsonl)")


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if (out_dir / INDEX).exists():
        if not overwrite:
            raise ShardError(f"{out_dir} already holds a complete shard set ({INDEX}); "
                             f"pass --overwrite (overwrite=True) to rebuild it")
        for path in out_dir.glob(SHARD_GLOB):
            path.unlink()
        for name in (INDEX, REJECTS):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / PROGRESS, ignore_errors=True)
    (out_dir / PROGRESS).mkdir(parents=True, exist_ok=True)


def _reusable_records(out_dir: Path, build: str) -> list[ShardRecord]:
    """The leading complete shards of an interrupted run of the same build, bytes verified."""
    records: list[ShardRecord] = []
    expected_start = 0
    while True:
        name = SHARD_NAME.format(len(records))
        record_path, shard = out_dir / PROGRESS / (name + ".json"), out_dir / name
        try:
            record = ShardRecord.from_json(record_path.read_text())
        except (OSError, ValueError, TypeError, KeyError):
            return records
        if (record.build != build or record.name != name or record.rows[0] != expected_start
                or not shard.is_file() or shard.stat().st_size != record.bytes
                or sha256(shard) != record.sha256):
            return records
        records.append(record)
        expected_start = record.rows[1]


def _remove_stale(out_dir: Path, keep: int) -> None:
    """Shards, records and temporary files after the ``keep`` reusable ones are rewritten."""
    for path in list(out_dir.glob("shard-*.tar*")) + list((out_dir / PROGRESS).glob("shard-*")):
        number = path.name[len("shard-"):len("shard-") + 6]
        if path.name.endswith(".tmp") or not number.isdigit() or int(number) >= keep:
            path.unlink()
