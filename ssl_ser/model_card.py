"""Model cards: what a trained model is, what it was trained on and under which terms.

Written as ``MODEL.md`` (for people) and ``model_card.json`` (for programs) into a run's best
checkpoint when the run ends, and next to every export (``FILE.md``; the JSON card is the
``card`` entry of the export's ``FILE.json``). A card states the classes and label map, the
shard sets with their hours, samples and speakers (from their ``index.json``), the protocol
(method, checkpoint selection, speaker overlap between training and validation/test sets) and
the checkpoint's scores, the front-end and sample rate, the date and ssl-ser version, and the
training corpora's licences as their manifests record them (``ssl-ser prepare ... --option
licence='CC BY-NC-SA 4.0'`` stores one in every row): a model inherits the terms of its data.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from ssl_ser import SAMPLE_RATE, __version__
from ssl_ser import checkpoint as ckpt
from ssl_ser.data.shard_index import read_index
from ssl_ser.errors import SslSerError

CARD_JSON = "model_card.json"
CARD_MD = "MODEL.md"
ROLES = ("train", "unlabelled", "valid", "test")
NOT_RECORDED = "not recorded"


def card_from_meta(meta: dict[str, Any] | None, *, classes: list[str] | None = None,
                   frontend: str | None = None) -> dict[str, Any]:
    """The card of a checkpoint's metadata (``meta.json``); without one, what ``classes`` and
    ``frontend`` say (e.g. an export of a model built in memory)."""
    meta = meta or {}
    job = meta.get("job", {})
    labels = meta.get("labels") or {"classes": classes or []}
    data = job.get("data", {})
    sets = {role: [shard_set_summary(p) for p in data.get(role) or []] for role in ROLES}
    card: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ssl_ser_version": __version__,
        "name": job.get("name"),
        "checkpoint": meta.get("checkpoint"),
        "classes": list(labels.get("classes", [])),
        "label_map": labels,
        "attributes": list(data.get("attributes") or []),
        "frontend": job.get("frontend") or ({"name": frontend} if frontend else None),
        "sample_rate": SAMPLE_RATE,
        "input": "mono waveform at 16 kHz (ssl-ser resamples and downmixes any file)",
        "model": {**(job.get("model") or {}), **meta.get("model_kwargs", {})} or None,
        "training_data": sets,
        "protocol": protocol(meta, sets),
        "scores": {k: v for k, v in (meta.get("metrics") or {}).items() if k.startswith("valid_")},
        "licences": licences(sets),
    }
    return card


def shard_set_summary(path: str) -> dict[str, Any]:
    """Hours, samples, speakers and corpora of a shard set, from its index."""

    try:
        index = read_index(path)
    except SslSerError as err:
        return {"path": path, "error": str(err)}
    return {"path": path, "hours": round(index.hours, 4), "samples": index.samples,
            "labelled": index.labelled, "speakers": sorted(index.corpus_speakers),
            "corpora": index.corpora, "manifest": index.raw.get("manifest", {}).get("path")}


def protocol(meta: dict[str, Any], sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    job = meta.get("job", {})
    train_speakers = {s for item in sets["train"] + sets["unlabelled"] for s in item.get("speakers", [])}
    overlap = {role: sorted(train_speakers & {s for item in sets[role] for s in item.get("speakers", [])})
               for role in ("valid", "test") if sets[role]}
    epochs = job.get("train", {}).get("epochs")
    return {
        "method": (job.get("method") or {}).get("name"),
        "selection": (f"epoch {meta['epoch']} of {epochs}, the best by {meta.get('score_attribute')} "
                      f"({meta.get('score_mode', 'max')})" if "epoch" in meta else None),
        "speakers_shared_with_training": overlap,
        "speaker_independent": all(not v for v in overlap.values()) if overlap else None,
    }


def licences(sets: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Each training corpus' licence as its manifest rows record it (``extra.licence``)."""
    found: dict[str, set[str]] = {}
    for item in sets["train"] + sets["unlabelled"]:
        for corpus in item.get("corpora", {}):
            found.setdefault(corpus, set())
        manifest = item.get("manifest")
        if manifest and Path(manifest).is_file():
            with open(manifest, encoding="utf-8") as rows:
                for line in rows:
                    if '"licence"' in line:  # a cheap filter before parsing
                        row = json.loads(line)
                        if row.get("extra", {}).get("licence"):
                            found.setdefault(row["corpus"], set()).add(str(row["extra"]["licence"]))
    return {corpus: "; ".join(sorted(values)) or NOT_RECORDED for corpus, values in sorted(found.items())}


def to_markdown(card: dict[str, Any]) -> str:
    def fmt(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)

    lines = [f"# Model card: {card.get('name') or 'ssl-ser model'}", "",
             f"- created: {card['created']} with ssl-ser {card['ssl_ser_version']}",
             f"- checkpoint: {card.get('checkpoint') or 'n/a'}",
             f"- input: {card['input']}; front-end: {fmt(card['frontend'])}; sample rate {card['sample_rate']} Hz",
             f"- model: {fmt(card['model'])}",
             f"- classes: {', '.join(card['classes'])}"
             + (f"; attributes: {', '.join(card['attributes'])}" if card["attributes"] else ""),
             f"- label map: {fmt(card['label_map'].get('mapping', {}))}", "",
             "## Training data", "", "| role | shard set | hours | samples | speakers | corpora |",
             "| --- | --- | --- | --- | --- | --- |"]
    for role, items in card["training_data"].items():
        for item in items:
            if "error" in item:
                lines.append(f"| {role} | {item['path']} | ? | ? | ? | {item['error']} |")
            else:
                lines.append(f"| {role} | {item['path']} | {item['hours']:.3f} | {item['samples']} | "
                             f"{len(item['speakers'])} | {fmt(item['corpora'])} |")
    proto = card["protocol"]
    lines += ["", "## Protocol and scores", "", f"- method: {proto['method']}",
              f"- checkpoint selection: {proto['selection']}",
              f"- speaker-independent: {proto['speaker_independent']} "
              f"(speakers shared with training: {fmt(proto['speakers_shared_with_training'])})",
              f"- validation scores of this checkpoint: {fmt(card['scores']) if card['scores'] else 'none'}",
              "", "## Licences", "",
              "A model inherits the terms of its training data (e.g. non-commercial corpora).", ""]
    lines += [f"- {corpus}: {licence}" for corpus, licence in card["licences"].items()] or ["- none recorded"]
    return "\n".join(lines) + "\n"


def write_card(card: dict[str, Any], markdown: Path, json_path: Path | None = None) -> None:
    markdown.write_text(to_markdown(card), encoding="utf-8")
    if json_path is not None:
        json_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_run_card(run_dir: str | Path) -> Path:
    """``MODEL.md`` and ``model_card.json`` in the run's best checkpoint; returns its directory."""

    directory = ckpt.find_checkpoint(run_dir, "best")
    meta = {**ckpt.load_meta(directory), "checkpoint": str(directory)}
    write_card(card_from_meta(meta), directory / CARD_MD, directory / CARD_JSON)
    return directory


def write_run_card_at_end(run_dir: str | Path | None, log: Any = print) -> None:
    """:func:`write_run_card` for the end of a run: a card that cannot be written (remote
    storage, no checkpoint) is reported in one line and never fails the finished run."""

    if run_dir is None:
        return
    try:
        log(f"model card: {write_run_card(run_dir) / CARD_MD}")
    except (OSError, SslSerError, ValueError) as err:
        log(f"model card not written: {err}")
