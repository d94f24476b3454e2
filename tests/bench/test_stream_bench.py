"""bench/perf/stream.py's helpers on tiny inputs: the loopback HTTP server (with and without
its added latency), the per-file HTTP Dataset, the parallel decode limit and the ratios against
their goals. Nothing here measures speed."""

from __future__ import annotations

import io
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_ser import audio
from tests.bench.scripts import ROOT, load_script

SCRIPT = ROOT / "bench" / "perf" / "stream.py"


bench = load_script(SCRIPT, "bench_stream")


@pytest.fixture
def tones(tmp_path: Path) -> list[Path]:
    paths = []
    for i, seconds in enumerate((0.5, 0.25, 1.0)):
        path = tmp_path / "audio dir" / f"tone {i}.flac"  # spaces: URLs must quote them
        path.parent.mkdir(exist_ok=True)
        t = np.arange(int(seconds * 16_000)) / 16_000
        sf.write(str(path), (0.3 * np.sin(2 * np.pi * 200 * (i + 1) * t)).astype(np.float32), 16_000,
                 subtype="PCM_16")
        paths.append(path)
    return paths


@pytest.mark.parametrize("latency_s", [0.0, 0.02])
def test_the_http_server_serves_the_folder_and_the_dataset_reads_it(tmp_path, tones, latency_s):
    with bench.http_server(tmp_path, latency_s) as base:
        assert base.startswith("http://127.0.0.1:")
        urls = bench.file_urls(base, tmp_path, [str(p) for p in tones])
        assert urls[0] == f"{base}/audio%20dir/tone%200.flac"
        with urllib.request.urlopen(urls[1]) as response:
            assert response.read() == tones[1].read_bytes()
        dataset = bench.HttpFileDataset(urls)
        assert len(dataset) == 3
        assert all(torch.equal(dataset[i], audio.load(tones[i])) for i in range(3))


def test_parallel_decode_delivers_what_one_process_decodes(tmp_path, tones):
    shards = tmp_path / "shards"
    shards.mkdir()
    for number, group in enumerate((tones[:2], tones[2:])):
        with tarfile.open(shards / f"shard-{number:06d}.tar", "w") as tar:
            for path in group:
                blob = path.read_bytes()
                info = tarfile.TarInfo(path.stem.replace(" ", "_") + ".flac")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    one = bench.time_bare_decode(shards)
    two = bench.time_parallel_decode(shards, 2)
    assert one[0] == two[0] == pytest.approx(1.75)
    assert all(value >= 0 for value in one + two)


def test_ratios_name_their_goals_and_say_which_are_missed():
    rates = {"shard reader": 900.0, "per-file Dataset": 1000.0, "bare FLAC decode, 1 process": 600.0,
             "bare FLAC decode, 2 processes": 1000.0, "shard reader, HTTP": 800.0,
             "per-file Dataset, HTTP": 200.0, "shard reader, HTTP, +5 ms": 700.0,
             "per-file Dataset, HTTP, +5 ms": 100.0}
    found = {r.name: r for r in bench.ratios(rates, 2, 5.0)}
    assert found["shard reader / decode limit (2 proc)"].value == pytest.approx(0.9)  # measured limit
    assert found["shard reader / decode limit (2 proc)"].met
    warm = found["shard reader / per-file Dataset, warm disk"]
    assert warm.value == pytest.approx(0.9) and warm.goal == 1.0 and not warm.met
    assert "MISSED" in warm.line() and "goal >= 1" in warm.line()
    assert found["shard reader / per-file Dataset, HTTP"].value == pytest.approx(4.0)
    assert found["shard reader / per-file Dataset, HTTP, +5 ms"].value == pytest.approx(7.0)

    without = {k: v for k, v in rates.items() if "HTTP" not in k and "2 processes" not in k}
    only = bench.ratios(without, 2, 5.0)  # no HTTP runs; the limit from 2 x the 1-process rate
    assert [r.name for r in only] == ["shard reader / decode limit (2 proc)",
                                      "shard reader / per-file Dataset, warm disk"]
    assert only[0].value == pytest.approx(0.75)


def test_shard_size_gives_every_worker_several_shards():
    assert bench.shards_per_set(2000, 2) == 64
    assert bench.shards_per_set(100, 2) == 13  # 8 shards for 2 workers
    assert bench.shards_per_set(3, 8) == 1
