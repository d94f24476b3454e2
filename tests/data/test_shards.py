from __future__ import annotations

import errno
import hashlib
import io
import json
import multiprocessing
import os
import signal
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssl_ser import SAMPLE_RATE
from ssl_ser.cli import main
from ssl_ser.data import shards as shards_module
from ssl_ser.data.manifest import utterance, write_manifest
from ssl_ser.data.shard_index import REJECTS, ShardError, format_index, read_index, verify_shards
from ssl_ser.data.shards import build_shards


def members(shard: Path) -> dict[str, bytes]:
    with tarfile.open(shard) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tar"))}


def test_build_writes_flac_and_row_per_sample_resampled_to_16k(tmp_path, write_audio):
    stereo = write_audio(tmp_path / "a.wav", seconds=0.5, rate=44_100, channels=2)
    mono8k = write_audio(tmp_path / "b.flac", seconds=0.3, rate=8000, freq=300)
    rows = [utterance(stereo, key="c-a", corpus="c", speaker="s1", emotion="happy", arousal=0.7),
            utterance(mono8k, key="c-b", corpus="c", speaker="s2", labelled=False, split="train")]
    write_manifest(rows, tmp_path / "m.jsonl")

    report = build_shards(tmp_path / "m.jsonl", tmp_path / "out", workers=1, progress=False)

    assert (report.rows, report.samples, report.rejected, report.shards) == (2, 2, 0, ["shard-000000.tar"])
    files = members(tmp_path / "out" / "shard-000000.tar")
    assert sorted(files) == ["c-a.flac", "c-a.json", "c-b.flac", "c-b.json"]
    for key, seconds in (("c-a", 0.5), ("c-b", 0.3)):
        wave, rate = sf.read(io.BytesIO(files[f"{key}.flac"]))
        assert rate == SAMPLE_RATE and wave.ndim == 1
        assert len(wave) == round(seconds * SAMPLE_RATE)
        assert sf.info(io.BytesIO(files[f"{key}.flac"])).subtype == "PCM_16"
        meta = json.loads(files[f"{key}.json"])
        assert meta["key"] == key and meta["extra"]["num_samples"] == len(wave)
    meta_a = json.loads(files["c-a.json"])
    assert (meta_a["emotion"], meta_a["speaker"], meta_a["arousal"], meta_a["labelled"]) == \
        ("happy", "s1", 0.7, True)
    assert meta_a["sample_rate"] == 44_100  # the row describes the source file

    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["format"] == "ssl-ser-shards" and index["version"] == 1
    assert index["sample_rate"] == SAMPLE_RATE
    assert index["manifest"]["sha256"] == hashlib.sha256(
        (tmp_path / "m.jsonl").read_bytes()).hexdigest()
    assert index["totals"] == {"rows": 2, "samples": 2, "rejected": 0, "labelled": 1,
                               "unlabelled": 1, "seconds": 0.8, "hours": round(0.8 / 3600, 6),
                               "bytes": (tmp_path / "out" / "shard-000000.tar").stat().st_size}
    assert index["histograms"] == {"emotion": {"happy": 1}, "speaker": {"s1": 1, "s2": 1},
                                   "corpus": {"c": 2}, "split": {"train": 1},
                                   "corpus_speaker": {"c/s1": 1, "c/s2": 1}}
    assert index["shards"][0]["samples"] == 2 and index["shards"][0]["labelled"] == 1
    assert (tmp_path / "out" / REJECTS).read_text() == ""
    assert not (tmp_path / "out" / ".progress").exists()


def test_same_manifest_gives_identical_bytes_whatever_the_worker_count(tmp_path, make_manifest):
    manifest = make_manifest([0.2 + 0.05 * i for i in range(12)])
    one = build_shards(manifest, tmp_path / "w1", max_count=5, workers=1, progress=False)
    two = build_shards(manifest, tmp_path / "w2", max_count=5, workers=2, progress=False)
    assert one.shards == two.shards == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert shard_bytes(tmp_path / "w1") == shard_bytes(tmp_path / "w2")
    assert (tmp_path / "w1" / "index.json").read_text() == (tmp_path / "w2" / "index.json").read_text()
    # tar metadata is fixed, and samples keep manifest order
    with tarfile.open(tmp_path / "w1" / "shard-000001.tar") as tar:
        infos = tar.getmembers()
    assert {(i.mtime, i.uid, i.gid, i.uname, i.mode) for i in infos} == {(0, 0, 0, "ssl-ser", 0o444)}
    assert [i.name for i in infos][::2] == [f"utt-{k:03d}.flac" for k in range(5, 10)]


def test_max_count_and_max_size_split_shards(tmp_path, make_manifest):
    manifest = make_manifest([0.5] * 6)
    by_count = build_shards(manifest, tmp_path / "c", max_count=4, workers=1, progress=False)
    assert [e["samples"] for e in read_index(tmp_path / "c").raw["shards"]] == [4, 2]
    assert len(by_count.shards) == 2
    one_sample = len(members(tmp_path / "c" / "shard-000000.tar")["utt-000.flac"])
    build_shards(manifest, tmp_path / "s", max_size=3 * one_sample + 4096, workers=1, progress=False)
    counts = [e["samples"] for e in read_index(tmp_path / "s").raw["shards"]]
    assert sum(counts) == 6 and max(counts) <= 3 and len(counts) >= 2
    for entry in read_index(tmp_path / "s").raw["shards"]:
        assert entry["bytes"] <= 3 * one_sample + 4096 + 2 * 10240  # tar pads to records


def _bad_manifest(tmp_path: Path, write_audio) -> tuple[Path, dict[str, str]]:
    """A manifest with one good row and one row for every kind of bad input."""
    good = write_audio(tmp_path / "good.wav", seconds=0.5)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wav file")
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0,), np.float32), 16_000)
    short = write_audio(tmp_path / "short.wav", seconds=0.05)
    nan = tmp_path / "nan.wav"
    wave = np.full(8000, 0.1, np.float32)
    wave[100] = np.nan
    sf.write(str(nan), wave, 16_000, subtype="FLOAT")
    zeros = tmp_path / "zeros.wav"
    sf.write(str(zeros), np.zeros(8000, np.float32), 16_000)
    tiny = tmp_path / "tiny.wav"  # below 16-bit resolution: silent once stored
    sf.write(str(tiny), np.full(8000, 1e-6, np.float32), 16_000, subtype="FLOAT")
    flat = tmp_path / "flat.wav"  # clipped flat at full scale: no signal left
    sf.write(str(flat), np.ones(8000, np.float32), 16_000, subtype="FLOAT")
    rows = [utterance(p, key=k, corpus="c") for k, p in
            [("good", good), ("garbage", garbage), ("empty", empty), ("short", short), ("nan", nan),
             ("zeros", zeros), ("tiny", tiny), ("flat", flat), ("missing", tmp_path / "x.wav")]]
    manifest = tmp_path / "bad.jsonl"
    write_manifest(rows, manifest)
    with manifest.open("a") as out:
        out.write("{not json\n")
        out.write(rows[0].to_json() + "\n")  # duplicate key
        out.write(json.dumps({**json.loads(rows[0].to_json()), "key": "odd", "colour": 1}) + "\n")
    expected = {"garbage": "unreadable", "empty": "empty", "short": "too_short", "nan": "non_finite",
                "zeros": "silent", "tiny": "silent", "flat": "constant", "missing": "missing"}
    return manifest, expected


def test_bad_input_is_rejected_with_reasons_and_counts_reconcile(tmp_path, write_audio):
    manifest, expected = _bad_manifest(tmp_path, write_audio)

    report = build_shards(manifest, tmp_path / "out", workers=2, min_seconds=0.1, progress=False)

    rejects = [json.loads(line) for line in (tmp_path / "out" / REJECTS).read_text().splitlines()]
    assert {r["key"]: r["reason"] for r in rejects if r["reason"] not in ("bad_row", "duplicate_key")} \
        == expected
    assert [(r["row"], r["reason"]) for r in rejects[-3:]] == [
        (10, "bad_row"), (11, "duplicate_key"), (12, "bad_row")]
    assert rejects[-1]["key"] == "odd" and "colour" in rejects[-1]["detail"]
    assert all(r["audio"] for r in rejects if r["reason"] != "bad_row" or r["key"])
    assert (report.rows, report.samples, report.rejected) == (12, 1, 11)
    index = read_index(tmp_path / "out").raw
    assert index["totals"]["rows"] == index["totals"]["samples"] + index["totals"]["rejected"]
    assert index["rejects"]["reasons"]["silent"] == 2 and index["rejects"]["count"] == 11
    assert [m for m in members(tmp_path / "out" / "shard-000000.tar")] == ["good.flac", "good.json"]


def test_strict_stops_at_the_first_bad_row(tmp_path, write_audio):
    manifest, _ = _bad_manifest(tmp_path, write_audio)
    with pytest.raises(ShardError, match=r"bad.jsonl:2: garbage .*unreadable"):
        build_shards(manifest, tmp_path / "out", workers=1, strict=True, progress=False)
    assert not (tmp_path / "out" / "index.json").exists()
    assert code_of(["shards", "build", str(manifest), str(tmp_path / "o2"), "--strict", "--quiet"]) == 2


def code_of(argv: list[str]) -> int:
    return main(argv)


def interrupt_build_at(row: int, manifest: Path, out: Path, monkeypatch, **settings) -> None:
    """Build until manifest row ``row`` (0-based) comes up, then stop as Ctrl-C would."""
    real = shards_module._encode_row

    def dies(args):
        if args[0] == row:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(shards_module, "_encode_row", dies)
    try:
        with pytest.raises(KeyboardInterrupt):
            build_shards(manifest, out, workers=1, progress=False, **settings)
    finally:
        monkeypatch.setattr(shards_module, "_encode_row", real)


@pytest.mark.parametrize("rows,max_count,dies_at", [(14, 3, 8), (80, 10, 75)])
def test_interrupted_build_leaves_no_partial_shard_and_resumes_identically(
        tmp_path, make_manifest, monkeypatch, rows, max_count, dies_at):
    # (80, 10, 75): the resume point lies beyond the first window of rows sent to the workers
    manifest = make_manifest([0.12 + 0.002 * i for i in range(rows)])
    build_shards(manifest, tmp_path / "clean", max_count=max_count, workers=1, progress=False)
    interrupt_build_at(dies_at, manifest, tmp_path / "out", monkeypatch, max_count=max_count)
    out = tmp_path / "out"
    assert not (out / "index.json").exists()
    complete = sorted(p.name for p in out.glob("shard-*.tar"))
    # shard k closes when the first row of shard k + 1 arrives; the one being filled is lost
    assert complete == [f"shard-{k:06d}.tar" for k in range((dies_at - 1) // max_count)]
    assert not list(out.glob("*.tmp"))
    for name in complete:  # only complete shards carry a final name
        assert shard_bytes(tmp_path / "clean")[name] == (out / name).read_bytes()

    (out / "shard-000002.tar.tmp").write_bytes(b"left over by a killed run")
    report = build_shards(manifest, out, max_count=max_count, workers=1, progress=False)
    assert report.reused == len(complete) and report.samples == rows
    assert shard_bytes(out) == shard_bytes(tmp_path / "clean")
    assert (out / "index.json").read_text().replace(str(out), "") == \
        (tmp_path / "clean" / "index.json").read_text().replace(str(tmp_path / "clean"), "")
    assert not list(out.glob("*.tmp"))


def test_resume_does_not_trust_a_changed_shard_or_another_build(tmp_path, make_manifest, monkeypatch):
    manifest = make_manifest([0.2] * 9)
    interrupt_build_at(7, manifest, tmp_path / "out", monkeypatch, max_count=3)
    good = (tmp_path / "out" / "shard-000001.tar").read_bytes()
    middle = len(good) // 2
    rotten = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1:]  # one flipped byte
    (tmp_path / "out" / "shard-000001.tar").write_bytes(rotten)
    report = build_shards(manifest, tmp_path / "out", max_count=3, workers=1, progress=False)
    assert report.reused == 1
    assert (tmp_path / "out" / "shard-000001.tar").read_bytes() == good
    assert verify_shards(tmp_path / "out") == []

    # other settings are another build: nothing is reused
    interrupt_build_at(7, manifest, tmp_path / "other", monkeypatch, max_count=3)
    report = build_shards(manifest, tmp_path / "other", max_count=2, workers=1, progress=False)
    assert report.reused == 0 and len(report.shards) == 5


def test_complete_set_needs_overwrite(tmp_path, make_manifest):
    manifest = make_manifest([0.2] * 3)
    build_shards(manifest, tmp_path / "out", workers=1, progress=False)
    with pytest.raises(ShardError, match="already holds a complete shard set.*--overwrite"):
        build_shards(manifest, tmp_path / "out", workers=1, progress=False)
    report = build_shards(manifest, tmp_path / "out", max_count=1, workers=1, overwrite=True,
                          progress=False)
    assert report.reused == 0 and sorted(p.name for p in (tmp_path / "out").glob("shard-*")) == \
        ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]


def test_missing_manifest_and_bad_index_are_clear_errors(tmp_path):
    with pytest.raises(ShardError, match="manifest not found: .*nope.jsonl"):
        build_shards(tmp_path / "nope.jsonl", tmp_path / "out", progress=False)
    with pytest.raises(ShardError, match="no shard index at"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(ShardError, match="not an ssl-ser shard index"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text("{oops")
    with pytest.raises(ShardError, match="not valid JSON"):
        read_index(tmp_path / "index.json")


def test_read_index_verify_and_format(tmp_path, make_manifest):
    manifest = make_manifest([0.3] * 5, labelled=[True, True, False, True, False])
    build_shards(manifest, tmp_path / "out", max_count=2, workers=1, progress=False)
    index = read_index(tmp_path / "out")
    assert (index.samples, index.labelled, index.unlabelled, index.sample_rate) == (5, 3, 2, 16000)
    assert index.shards == [str(tmp_path / "out" / f"shard-00000{i}.tar") for i in range(3)]
    assert index.emotions == {"happy": 1, "neutral": 1, "sad": 1}  # rows 0, 1 and 3
    text = format_index(index)
    assert "5 = 5 samples + 0 rejected" in text and "3 labelled, 2 unlabelled" in text
    assert "shards      3 (shard-000000.tar .. shard-000002.tar), 1-2 samples each" in text
    assert verify_shards(tmp_path / "out") == []
    (tmp_path / "out" / "shard-000001.tar").unlink()
    assert verify_shards(tmp_path / "out") == [f"{tmp_path / 'out' / 'shard-000001.tar'}: missing"]


def test_cli_build_and_info(tmp_path, make_manifest, capsys):
    manifest = make_manifest([0.3] * 4)
    assert main(["shards", "build", str(manifest), str(tmp_path / "out"), "--max-count", "3",
                 "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 rows = 4 samples written + 0 rejected" in out and "2 shard(s)" in out
    assert main(["shards", "info", str(tmp_path / "out"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "samples     4 (4 labelled, 0 unlabelled)" in out and "verify: 2 of 2 shard(s) intact" in out
    assert main(["shards", "info", str(tmp_path / "nothing")]) == 2
    assert "no shard index" in capsys.readouterr().err


def test_cli_defaults_match_the_library():
    from ssl_ser.commands import shards as command

    assert command.MAX_COUNT == shards_module.MAX_COUNT
    assert command.parse_size(command.MAX_SIZE) == shards_module.MAX_SIZE
    assert command.MIN_SECONDS == shards_module.MIN_SECONDS
    assert command.parse_size("1.5G") == int(1.5 * 1024**3) and command.parse_size("100") == 100
    assert {"build", "info"} <= set(command.SUBCOMMANDS)


def test_a_killed_build_process_leaves_only_complete_shards(tmp_path, write_audio):
    rows = [utterance(write_audio(tmp_path / "audio" / f"{i:03d}.flac", seconds=0.5, rate=48_000,
                                  channels=2, seed=i), key=f"k{i:03d}", corpus="c")
            for i in range(120)]
    write_manifest(rows, tmp_path / "m.jsonl")
    out = tmp_path / "out"
    # a forked process (no second torch import), killed with SIGKILL once 3 shards are done
    build = multiprocessing.get_context("fork").Process(
        target=build_shards, args=(tmp_path / "m.jsonl", out),
        kwargs=dict(max_count=10, workers=1, progress=False))
    build.start()
    deadline = time.monotonic() + 60
    while not (out / ".progress" / "shard-000002.tar.json").exists():
        assert build.is_alive(), "the build ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    build.kill()
    build.join()
    assert build.exitcode == -signal.SIGKILL

    assert not (out / "index.json").exists()
    finished = sorted(out.glob("shard-*.tar"))
    assert 3 <= len(finished) < 12
    for shard in finished:  # every shard under a final name is complete
        assert len(members(shard)) == 20
    report = build_shards(tmp_path / "m.jsonl", out, max_count=10, workers=2, progress=False)
    assert report.reused >= 3 and report.samples == 120
    clean = build_shards(tmp_path / "m.jsonl", tmp_path / "clean", max_count=10, workers=2,
                         progress=False)
    assert shard_bytes(out) == shard_bytes(tmp_path / "clean") and len(clean.shards) == 12


class _FullDisk:
    """A file on a disk that fills up after ``budget`` bytes over all files: writes fail with
    ENOSPC, and so do the flush and close that follow (as a real full disk answers)."""

    def __init__(self, path, budget: dict[str, int]) -> None:
        self.real, self.budget, self.failed = open(path, "wb"), budget, False

    def _full(self) -> OSError:
        self.failed = True
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(self, data) -> int:
        if len(data) > self.budget["left"]:
            raise self._full()
        self.budget["left"] -= len(data)
        return self.real.write(data)

    def flush(self) -> None:
        if self.failed:
            raise self._full()
        self.real.flush()

    def close(self) -> None:
        self.real.close()
        if self.failed:
            raise self._full()

    def fileno(self) -> int:
        return self.real.fileno()

    def tell(self) -> int:
        return self.real.tell()


def test_a_full_disk_gives_one_line_removes_tmp_files_and_the_rerun_finishes(
        tmp_path, make_manifest, monkeypatch, capsys):
    manifest = make_manifest([0.2 + 0.01 * i for i in range(12)])
    clean = tmp_path / "clean"
    build_shards(manifest, clean, max_count=3, workers=1, progress=False)
    sizes = [p.stat().st_size for p in sorted(clean.glob("shard-*.tar"))]
    budget = {"left": sizes[0] + sizes[1] + sizes[2] // 2}  # full in the middle of shard 3
    monkeypatch.setattr(shards_module, "open", lambda path, mode: _FullDisk(path, budget), raising=False)
    out = tmp_path / "out"
    assert main(["shards", "build", str(manifest), str(out), "--max-count", "3", "--workers", "1",
                 "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"ssl-ser shards: error: {out}: No space left on device while writing the shard set; "
        f"complete shards are kept: free some space and rerun the same command to continue\n")
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "shard-000000.tar", "shard-000000.tar.json", "shard-000001.tar", "shard-000001.tar.json"]

    monkeypatch.undo()
    report = build_shards(manifest, out, max_count=3, workers=1, progress=False)
    assert report.reused == 2 and shard_bytes(out) == shard_bytes(clean)


def test_a_second_build_into_the_same_directory_is_refused(tmp_path, make_manifest, monkeypatch):
    import threading

    manifest = make_manifest([0.2] * 6)
    out = tmp_path / "out"
    inside, release = threading.Event(), threading.Event()
    real = shards_module._encode_row

    def slow(args):
        inside.set()
        assert release.wait(60)
        return real(args)

    monkeypatch.setattr(shards_module, "_encode_row", slow)
    first: dict = {}
    thread = threading.Thread(target=lambda: first.update(report=build_shards(
        manifest, out, max_count=2, workers=1, progress=False)))
    thread.start()
    try:
        assert inside.wait(60)
        with pytest.raises(ShardError, match=rf"^{out}: another `shards build` is writing there"):
            build_shards(manifest, out, max_count=2, workers=1, progress=False)
    finally:
        release.set()
        thread.join(60)
    assert first["report"].samples == 6 and verify_shards(out) == []
    build_shards(manifest, out, max_count=2, workers=1, progress=False, overwrite=True)  # lock released


def test_a_resumed_build_writes_the_same_rejects_bytes(tmp_path, write_audio, monkeypatch):
    manifest, _ = _bad_manifest(tmp_path, write_audio)
    good = json.loads(manifest.read_text().splitlines()[0])
    with manifest.open("a") as out:  # samples after the rejects, so a resume reuses shards with rejects
        for i in range(4):
            out.write(json.dumps({**good, "key": f"later-{i}"}) + "\n")
    build_shards(manifest, tmp_path / "clean", max_count=1, workers=1, progress=False)
    interrupt_build_at(13, manifest, tmp_path / "out", monkeypatch, max_count=1)
    report = build_shards(manifest, tmp_path / "out", max_count=1, workers=1, progress=False)
    assert report.reused == 1 and report.rejected == 11  # the reused shard carries the rejects
    assert (tmp_path / "out" / REJECTS).read_bytes() == (tmp_path / "clean" / REJECTS).read_bytes()
