"""The shard-set index, ``OUT/index.json``: its format (what the builder records per shard and
in total, with label/speaker/corpus histograms), reading it from a directory, file or URL,
verifying shards against it, and its human-readable summary (``ssl-ser shards info``).

Readers take a shard set's shard list and counts from here, never from globbing the folder,
so a missing or short shard is noticed (:meth:`ssl_ser.data.stream.ShardStream.shortfall`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_ser import SAMPLE_RATE, __version__
from ssl_ser.errors import SslSerError
from ssl_ser.files import is_url

if TYPE_CHECKING:  # the manifest module imports torch (via audio): readers of an index need neither
    from ssl_ser.data.manifest import Utterance

FORMAT = "ssl-ser-shards"
FORMAT_VERSION = 1
SHARD_NAME = "shard-{:06d}.tar"
SHARD_GLOB = "shard-*.tar"
INDEX = "index.json"
REJECTS = "rejects.jsonl"

REJECT_REASONS = ("bad_row", "duplicate_key", "missing", "unreadable", "empty", "non_finite",
                  "too_short", "silent", "constant", "error")


class ShardError(SslSerError):
    """A shard set that cannot be built or read; the message names the file and the fix."""


@dataclass(frozen=True)
class Reject:
    row: int
    """1-based line number in the manifest."""
    key: str | None
    audio: str | None
    reason: str
    """One of :data:`REJECT_REASONS`."""
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ShardRecord:
    """What one complete shard holds; kept in ``.progress/`` while building, summed into the index."""

    name: str
    build: str
    """The build id (manifest hash + settings) this shard belongs to."""
    rows: tuple[int, int]
    """Half-open range of manifest rows (0-based, non-empty lines) this shard consumed."""
    samples: int
    seconds: float
    bytes: int
    sha256: str
    rejects: list[dict[str, Any]] = field(default_factory=list)
    histograms: dict[str, dict[str, int]] = field(default_factory=dict)
    labelled: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShardRecord:
        data = json.loads(text)
        data["rows"] = tuple(data["rows"])
        # in Reject's field order, as a fresh build writes them (to_json sorts keys)
        data["rejects"] = [Reject(**r).to_dict() for r in data.get("rejects", [])]
        return cls(**data)


HISTOGRAMS = ("emotion", "speaker", "corpus", "split", "corpus_speaker")


def histogram_value(utt: Utterance, name: str) -> str | None:
    if name == "corpus_speaker":
        return None if utt.speaker is None else f"{utt.corpus}/{utt.speaker}"
    value = getattr(utt, name)
    return None if value is None else str(value)


def make_index(manifest: Path, manifest_sha: str, rows: int, build: str, settings: dict[str, Any],
                records: list[ShardRecord], rejects: list[dict[str, Any]]) -> dict[str, Any]:
    hist: dict[str, Counter[str]] = {k: Counter() for k in HISTOGRAMS}
    for record in records:
        for name, counts in record.histograms.items():
            hist[name].update(counts)
    samples = sum(r.samples for r in records)
    labelled = sum(r.labelled for r in records)
    seconds = sum(r.seconds for r in records)
    reasons = Counter(r["reason"] for r in rejects)
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_by": f"ssl-ser {__version__}",
        "sample_rate": SAMPLE_RATE,
        "audio": "flac, 16-bit, mono",
        "manifest": {"path": str(manifest.resolve()), "sha256": manifest_sha, "rows": rows},
        "build": {"id": build, **settings},
        "totals": {"rows": rows, "samples": samples, "rejected": len(rejects),
                   "labelled": labelled, "unlabelled": samples - labelled,
                   "seconds": round(seconds, 3), "hours": round(seconds / 3600, 6),
                   "bytes": sum(r.bytes for r in records)},
        "shards": [{"name": r.name, "samples": r.samples, "labelled": r.labelled,
                    "hours": round(r.seconds / 3600, 6),
                    "seconds": round(r.seconds, 3), "bytes": r.bytes, "sha256": r.sha256,
                    "rows": list(r.rows)} for r in records],
        "histograms": {name: dict(sorted(c.items())) for name, c in hist.items()},
        "rejects": {"file": REJECTS, "count": len(rejects), "reasons": dict(sorted(reasons.items()))},
    }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- reading the index ----------------------------------------------------------------------

@dataclass(frozen=True)
class ShardIndex:
    """A parsed ``index.json``; ``raw`` keeps every field."""

    path: str
    """Where the index was read from (a file path or URL)."""
    raw: dict[str, Any]

    @property
    def root(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else "."

    @property
    def samples(self) -> int:
        return int(self.raw["totals"]["samples"])

    @property
    def hours(self) -> float:
        return float(self.raw["totals"]["hours"])

    @property
    def sample_rate(self) -> int:
        return int(self.raw["sample_rate"])

    @property
    def labelled(self) -> int:
        return int(self.raw["totals"]["labelled"])

    @property
    def unlabelled(self) -> int:
        return int(self.raw["totals"]["unlabelled"])

    @property
    def emotions(self) -> dict[str, int]:
        return dict(self.raw["histograms"]["emotion"])

    @property
    def speakers(self) -> dict[str, int]:
        return dict(self.raw["histograms"]["speaker"])

    @property
    def corpus_speakers(self) -> dict[str, int]:
        """Speakers as ``corpus/speaker`` (ids are unique within a corpus only)."""
        hist = self.raw["histograms"].get("corpus_speaker")
        if hist is None:  # an index written before this histogram existed
            corpora = list(self.corpora)
            if len(corpora) != 1:
                raise ShardError(f"{self.path}: rebuild this shard set; its index has no "
                                 f"corpus_speaker histogram and mixes corpora {corpora}")
            hist = {f"{corpora[0]}/{s}": n for s, n in self.speakers.items()}
        return dict(hist)

    @property
    def corpora(self) -> dict[str, int]:
        return dict(self.raw["histograms"]["corpus"])

    @property
    def shards(self) -> list[str]:
        """Shard locations (paths or URLs next to the index), in order."""
        return [f"{self.root}/{s['name']}" for s in self.raw["shards"]]


def read_index(path_or_dir: str | Path) -> ShardIndex:
    """Read ``index.json`` from a shard directory, the file itself, or a URL (``s3://``,
    ``pipe:``, ``http(s)://``) of either."""
    text = str(path_or_dir)
    remote = is_url(text)
    if remote:
        location = text if text.endswith(INDEX) else text.rstrip("/") + "/" + INDEX
        try:
            with open_url(location) as handle:
                data = handle.read()
        except Exception as err:
            raise ShardError(f"cannot read {location}: {err}") from None
    else:
        path = Path(text)
        path = path / INDEX if path.is_dir() else path
        if not path.is_file():
            raise ShardError(f"no shard index at {path} (build one with `ssl-ser shards build`)")
        location, data = str(path), path.read_bytes()
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ShardError(f"{location}: not valid JSON ({err})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ShardError(f"{location}: not an ssl-ser shard index (format {FORMAT!r} expected)")
    if raw.get("version", 0) > FORMAT_VERSION:
        raise ShardError(f"{location}: shard format version {raw['version']} is newer than this "
                         f"ssl-ser understands ({FORMAT_VERSION}); upgrade ssl-ser")
    return ShardIndex(path=location, raw=raw)


def open_url(url: str) -> Any:
    """Open a local path or URL for reading; ``s3://`` goes through the AWS command line."""
    # deferred: webdataset only inside stream readers
    import webdataset as wds

    if url.startswith("s3://"):
        url = f"pipe:aws s3 cp {url} -"
    return wds.gopen(url, "rb")


def verify_shards(path_or_dir: str | Path) -> list[str]:
    """Problems found by checking every local shard's size and sha256 against the index
    (an empty list means the set is intact)."""
    index = read_index(path_or_dir)
    problems = []
    root = Path(index.root)
    for entry in index.raw["shards"]:
        shard = root / entry["name"]
        if not shard.is_file():
            problems.append(f"{shard}: missing")
        elif shard.stat().st_size != entry["bytes"]:
            problems.append(f"{shard}: {shard.stat().st_size} bytes, index says {entry['bytes']}")
        elif sha256(shard) != entry["sha256"]:
            problems.append(f"{shard}: sha256 differs from the index (corrupt or replaced)")
    return problems


def format_index(index: ShardIndex, *, top: int = 12) -> str:
    """A readable summary of a shard set (what ``ssl-ser shards info`` prints)."""
    raw, totals = index.raw, index.raw["totals"]
    out = io.StringIO()
    w = out.write
    w(f"shard set   {index.root}  ({raw['format']} v{raw['version']}, {raw['sample_rate']} Hz "
      f"{raw['audio']})\n")
    w(f"manifest    {raw['manifest']['path']}\n            sha256 {raw['manifest']['sha256']}\n")
    w(f"rows        {totals['rows']} = {totals['samples']} samples + {totals['rejected']} rejected\n")
    w(f"samples     {totals['samples']} ({totals['labelled']} labelled, {totals['unlabelled']} "
      f"unlabelled), {totals['hours']:.3f} h, {totals['bytes'] / 1e6:.1f} MB\n")
    shards = raw["shards"]
    if shards:
        counts = [s["samples"] for s in shards]
        w(f"shards      {len(shards)} ({shards[0]['name']} .. {shards[-1]['name']}), "
          f"{min(counts)}-{max(counts)} samples each\n")
    else:
        w("shards      none\n")
    for name in ("emotion", "corpus", "split", "speaker"):
        hist = raw["histograms"].get(name, {})
        if not hist:
            continue
        items = sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{k} {v}" for k, v in items[:top])
        more = f", ... ({len(items) - top} more)" if len(items) > top else ""
        w(f"{name:<11} {shown}{more}\n")
    rejects = raw["rejects"]
    if rejects["count"]:
        reasons = ", ".join(f"{k} {v}" for k, v in rejects["reasons"].items())
        w(f"rejects     {rejects['count']} ({reasons}); see {rejects['file']}\n")
    else:
        w("rejects     none\n")
    return out.getvalue()
