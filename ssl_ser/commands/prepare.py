"""``ssl-ser prepare CORPUS ROOT --out MANIFEST.jsonl``: run a corpus recipe, write its manifest."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssl_ser.data.manifest import Utterance

HELP = "write a manifest (one JSON row per utterance) from a corpus' published layout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", nargs="?", help="recipe name ('list' or --list shows them)")
    parser.add_argument("root", nargs="?", help="the corpus folder (for csv: the CSV file)")
    parser.add_argument("--out", "-o", help="manifest to write (JSON lines)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe option, value read as YAML (merge_excited=true); repeatable")
    parser.add_argument("--list", action="store_true", help="list the recipes and their options")


def run(args: argparse.Namespace) -> int:
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import logging

    from ssl_ser.data.corpora import (  # deferred: start-up cost: `ssl-ser --help` imports every command
        CORPORA,
        CorpusError,
        describe_options,
        prepare,
    )

    # deferred: start-up cost: `ssl-ser --help` imports every command
    from ssl_ser.data.manifest import write_manifest

    if args.list or args.corpus == "list":
        for name in CORPORA.names():
            recipe = CORPORA.get(name)
            about = " ".join((recipe.__doc__ or "").strip().split("\n\n")[0].split())
            print(f"{name:12s} {about}")
            print(f"{'':12s} options: {describe_options(recipe)}")
        return 0
    if not args.corpus or not args.root or not args.out:
        raise CorpusError("give CORPUS ROOT --out MANIFEST.jsonl (or --list to see the recipes)")
    if not logging.getLogger().handlers:  # the recipes' warnings about skipped files
        logging.basicConfig(level=logging.INFO, format="ssl-ser prepare: %(message)s")
    rows = prepare(args.corpus, args.root, **parse_options(args.option))
    count = write_manifest(rows, args.out)
    print(f"wrote {count} rows to {args.out}")
    print(summary(rows))
    return 0


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=x,y"]`` -> ``{"a": 1, "b": "x,y"}``; values are YAML scalars or lists."""
    # deferred: start-up cost: `ssl-ser --help` imports every command
    import yaml

    from ssl_ser.data.corpora import CorpusError

    options: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise CorpusError(f"--option {item!r} is not of the form key=value")
        try:
            options[name.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise CorpusError(f"--option {item!r}: value is not valid YAML ({err})") from None
    return options


def summary(rows: Sequence[Utterance]) -> str:
    """A few lines describing a manifest: counts, speakers, emotions, splits, hours, problems."""
    labelled = sum(r.labelled for r in rows)
    no_speaker = sum(r.speaker is None for r in rows)
    speakers = len({(r.corpus, r.speaker) for r in rows if r.speaker is not None})
    with_attributes = sum(any(v is not None for v in (r.arousal, r.valence, r.dominance))
                          for r in rows)
    durations = [r.duration for r in rows if r.duration is not None]
    broken = [r for r in rows if r.extra.get("header_error")]
    lines = [
        f"  rows        {len(rows)} ({labelled} labelled, {len(rows) - labelled} unlabelled)",
        f"  corpora     {_histogram(r.corpus for r in rows)}",
        f"  speakers    {speakers}" + (f" ({no_speaker} rows without one)" if no_speaker else ""),
        f"  emotions    {_histogram(r.emotion for r in rows if r.emotion is not None) or 'none'}",
        f"  attributes  {with_attributes} rows",
        f"  splits      {_histogram(r.split or 'none' for r in rows)}",
        f"  rates       {_histogram(r.sample_rate for r in rows if r.sample_rate)} (Hz)",
    ]
    if durations:
        lines.append(f"  hours       {sum(durations) / 3600:.2f} (per file {min(durations):.2f}-"
                     f"{max(durations):.2f} s, mean {sum(durations) / len(durations):.2f} s)")
    lines.append(f"  unreadable  {len(broken)}")
    lines += [f"    {r.audio}: {r.extra['header_error']}" for r in broken[:5]]
    if len(broken) > 5:
        lines.append(f"    ... ({len(broken) - 5} more)")
    return "\n".join(lines)


def _histogram(values: Iterable[Any]) -> str:
    """``"a 3, b 1"``, in sorted order (numbers numerically)."""
    counts = Counter(values)
    return ", ".join(f"{value} {counts[value]}" for value in sorted(counts))
