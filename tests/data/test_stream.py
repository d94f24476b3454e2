from __future__ import annotations

import functools
import io
import math
import shutil
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_ser.data.shard_index import read_index
from ssl_ser.data.stream import (
    Batch,
    StreamError,
    StreamSource,
    make_stream,
    resolve_rank,
    resolve_shards,
)


def all_keys(shard_dir: Path) -> list[str]:
    keys = []
    for shard in sorted(shard_dir.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            keys += [m.name[:-5] for m in tar.getmembers() if m.name.endswith(".json")]
    return keys


def epoch_keys(stream) -> list[str]:
    return [k for batch in stream for k in batch.keys]


@pytest.mark.parametrize("name", ["many", "few"])
def test_exact_mode_delivers_every_sample_once_across_2_ranks_x_2_workers(shard_sets, name):
    seen: list[str] = []
    for rank in (0, 1):
        stream = make_stream(shard_sets[name], mode="exact", batch_size=4, rank=rank, world_size=2,
                             num_workers=2)
        keys = epoch_keys(stream)
        assert keys, f"rank {rank} got nothing"
        assert stream.stats.samples_read == len(keys)
        seen += keys
    assert sorted(seen) == sorted(all_keys(shard_sets[name]))
    assert len(seen) == len(set(seen))


def test_exact_mode_shuffled_still_gives_every_sample_once(shard_sets):
    seen: list[str] = []
    for rank in (0, 1):
        stream = make_stream(shard_sets["many"], mode="exact", batch_size=5, rank=rank,
                             world_size=2, num_workers=2, shuffle=True, shuffle_buffer=7, epoch=3)
        for batch in stream:
            seen += batch.keys
    assert sorted(seen) == sorted(all_keys(shard_sets["many"]))


@pytest.mark.parametrize("world_size", [2, 3])
def test_train_mode_gives_every_rank_the_same_number_of_full_batches(shard_sets, world_size):
    expected = math.ceil(40 / (world_size * 6))
    for rank in range(world_size):
        stream = make_stream(shard_sets["many"], mode="train", batch_size=6, rank=rank,
                             world_size=world_size, num_workers=2, shuffle_buffer=10)
        sizes = [len(batch) for batch in stream]
        assert len(stream) == expected
        assert sizes == [6] * expected


def test_train_mode_is_deterministic_per_seed_and_epoch(shard_sets):
    def run(seed: int, epoch: int) -> tuple[list[str], torch.Tensor]:
        stream = make_stream(shard_sets["many"], mode="train", batch_size=4, rank=1, world_size=2,
                             num_workers=2, seed=seed, epoch=epoch, crop_seconds=0.12, shuffle_buffer=10)
        batches = list(stream)
        return [k for b in batches for k in b.keys], torch.cat([b.audio for b in batches])

    keys, audio = run(seed=7, epoch=2)
    again_keys, again_audio = run(seed=7, epoch=2)
    assert keys == again_keys and torch.equal(audio, again_audio)  # crops included
    assert run(seed=7, epoch=3)[0] != keys
    assert run(seed=8, epoch=2)[0] != keys


def test_exact_mode_is_deterministic_and_shuffles_per_epoch(shard_sets):
    def keys(epoch: int) -> list[str]:
        return epoch_keys(make_stream(shard_sets["many"], mode="exact", batch_size=4, rank=0,
                                      world_size=1, num_workers=2, shuffle=True, epoch=epoch,
                                      shuffle_buffer=8))

    assert keys(0) == keys(0)
    assert keys(0) != keys(1) and sorted(keys(0)) == sorted(keys(1))


def test_mixing_ratio_holds_over_many_batches(shard_sets):
    stream = make_stream(sources=[StreamSource(shard_sets["labelled"], weight=0.3),
                                  StreamSource(shard_sets["unlabelled"], weight=0.7)],
                         mode="train", batch_size=50, samples_per_epoch=2000, rank=0,
                         world_size=1, num_workers=2, shuffle_buffer=4)
    labelled = total = 0
    for batch in stream:
        assert torch.equal(batch.labelled, batch.source == 0)
        labelled += int(batch.labelled.sum())
        total += len(batch)
    assert total == 2000
    assert abs(labelled / total - 0.3) < 0.04


def test_sources_without_weights_mix_by_size(shard_sets):
    stream = make_stream(sources=[StreamSource(shard_sets["labelled"]),
                                  StreamSource(shard_sets["many"])],
                         mode="train", batch_size=8, rank=0, world_size=1, num_workers=0)
    assert stream.settings.weights == (24.0, 40.0)
    assert len(stream) == math.ceil(64 / 8)  # samples_per_epoch defaults to the sets' total


def test_crop_and_pad_keep_true_lengths(shard_sets):
    originals = {}
    for shard in sorted(shard_sets["varied"].glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".flac"):
                    wave, _ = sf.read(io.BytesIO(tar.extractfile(member).read()), dtype="float32")
                    originals[member.name[:-5]] = torch.from_numpy(wave)
    crop = 16000  # 1 s
    stream = make_stream(shard_sets["varied"], mode="train", batch_size=8, crop_seconds=1.0,
                         rank=0, world_size=1, num_workers=2, samples_per_epoch=48)
    rows = 0
    for batch in stream:
        assert batch.audio.shape == (8, crop) and batch.audio.dtype == torch.float32
        for key, row, length in zip(batch.keys, batch.audio, batch.lengths):
            original = originals[key]
            assert int(length) == min(original.numel(), crop)
            assert not row[length:].any()  # zero padding after the true length
            piece = row[:length]
            offsets = [o for o in range(original.numel() - int(length) + 1)
                       if torch.equal(original[o:o + int(length)], piece)]
            assert offsets, f"{key}: the crop is not a piece of the utterance"
            rows += 1
    assert rows == 48

    exact = make_stream(shard_sets["varied"], mode="exact", batch_size=48, max_seconds=0.5,
                        rank=0, world_size=1, num_workers=0)
    (batch,) = list(exact)
    assert batch.audio.shape[1] == 8000
    for key, row, length in zip(batch.keys, batch.audio, batch.lengths):
        assert torch.equal(row[:length], originals[key][:length])  # exact mode cuts from the start


def test_crops_decode_only_their_window_with_the_offsets_of_a_full_decode(shard_sets, monkeypatch):
    from ssl_ser import audio

    def stream():
        return make_stream(shard_sets["varied"], mode="train", batch_size=8, crop_seconds=0.7,
                           rank=0, world_size=1, num_workers=0, samples_per_epoch=48, seed=3)

    windowed = list(stream())

    clip = audio.decode_clip

    def decode_whole_then_cut(blob, length, start, rate=16_000):
        data, found = clip(blob)
        if found == rate and data.shape[1] > length:
            offset = start(data.shape[1] - length)
            data = data[:, offset:offset + length]
        return data, found

    monkeypatch.setattr(audio, "decode_clip", decode_whole_then_cut)
    for got, want in zip(windowed, stream(), strict=True):
        assert got.keys == want.keys and torch.equal(got.audio, want.audio)
        assert torch.equal(got.lengths, want.lengths)


def test_a_batch_mixing_16_bit_and_other_audio_is_float32_and_exact(tmp_path):
    t = np.linspace(-0.5, 0.5, 3200, dtype=np.float32)
    members = []
    for key, data, rate, subtype in (("a16", t, 16_000, "PCM_16"), ("b24", -t, 16_000, "PCM_24"),
                                     ("c8k", t[:1600], 8_000, "PCM_16")):
        buf = io.BytesIO()
        sf.write(buf, data, rate, format="FLAC", subtype=subtype)
        members += [(f"{key}.flac", buf.getvalue()), (f"{key}.json", b'{"labelled": false}')]
    with tarfile.open(tmp_path / "shard-000000.tar", "w") as tar:
        for name, blob in members:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    for keys in (["a16"], ["a16", "b24", "c8k"]):
        stream = make_stream(tmp_path, mode="exact", batch_size=len(keys), rank=0, world_size=1,
                             num_workers=0)
        batch = next(iter(stream))
        assert batch.keys == keys and batch.audio.dtype == torch.float32
        wave, _ = sf.read(io.BytesIO(members[0][1]), dtype="float32")
        assert torch.equal(batch.audio[0, :3200], torch.from_numpy(wave))


def test_pinned_batches_are_asked_for_only_with_cuda(shard_sets, monkeypatch):
    from ssl_ser.data import stream as module

    pins = []
    real = module._unpack
    monkeypatch.setattr(module, "_unpack", lambda packed, pin: pins.append(pin) or real(packed))
    for cuda in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        for pin_memory in (False, True):
            pins.clear()
            stream = make_stream(shard_sets["few"], mode="exact", batch_size=2, rank=0,
                                 world_size=1, num_workers=0, pin_memory=pin_memory)
            assert len(epoch_keys(stream)) == 6
            assert pins == [cuda and pin_memory] * 3


def test_a_truncated_or_garbage_shard_is_skipped_and_counted(shard_sets, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(shard_sets["many"], damaged)
    shard = damaged / "shard-000001.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2 + 100])
    (damaged / "shard-000003.tar").write_bytes(b"this is not a tar file" * 50)

    stream = make_stream(damaged, mode="exact", batch_size=4, rank=0, world_size=1, num_workers=2)
    keys = epoch_keys(stream)
    stats = stream.stats
    assert stats.shards_failed == 2 and stats.shards_opened == 5
    assert sorted(stats.failed_shards) == [str(shard), str(damaged / "shard-000003.tar")]
    intact = set(all_keys(shard_sets["many"])[:8] + all_keys(shard_sets["many"])[16:24]
                 + all_keys(shard_sets["many"])[32:])
    assert intact <= set(keys) and len(keys) == len(set(keys))
    assert 24 <= len(keys) < 32  # some of the truncated shard's samples were still readable

    short = stream.shortfall()
    assert short is not None and short.expected == 40 and short.read == len(keys)
    assert short.shards_failed == 2 and short.missing == 40 - len(keys)

    train = make_stream(damaged, mode="train", batch_size=4, rank=0, world_size=1, num_workers=2,
                        samples_per_epoch=80, shuffle_buffer=4)
    assert sum(len(b) for b in train) == 80
    # 2 broken shards, however often the resampling draws them (and in both workers)
    assert train.stats.shards_failed == 2 and len(train.stats.failed_shards) == 2


def test_a_shard_set_is_read_from_its_index_and_a_missing_shard_is_a_shortfall(shard_sets, tmp_path):
    whole = make_stream(shard_sets["many"], mode="exact", batch_size=8, rank=0, world_size=1,
                        num_workers=0)
    assert len(epoch_keys(whole)) == 40 and whole.shortfall() is None

    gone = tmp_path / "gone"
    shutil.copytree(shard_sets["many"], gone)
    (gone / "shard-000001.tar").unlink()
    shutil.copy(gone / "shard-000002.tar", gone / "shard-000099.tar")  # not in the index: not read
    assert resolve_shards(gone) == [str(gone / f"shard-{i:06d}.tar") for i in range(5)]
    stream = make_stream(gone, mode="exact", batch_size=8, rank=0, world_size=1, num_workers=0)
    assert len(epoch_keys(stream)) == 32
    short = stream.shortfall()
    assert short is not None and (short.expected, short.read, short.missing) == (40, 32, 8)
    assert short.failed_shards == [str(gone / "shard-000001.tar")]
    assert short.describe() == (f"read 32 of the 40 samples the shard index lists; 1 shard(s) missing "
                                f"or broken: {gone / 'shard-000001.tar'}")


def test_fewer_samples_than_the_index_lists_is_a_shortfall_without_any_error(shard_sets, tmp_path):
    import json

    fewer = tmp_path / "fewer"
    shutil.copytree(shard_sets["few"], fewer)
    index = json.loads((fewer / "index.json").read_text())
    index["shards"][0]["samples"] += 2  # e.g. a shard replaced by a shorter, valid one
    (fewer / "index.json").write_text(json.dumps(index))
    stream = make_stream(fewer, mode="exact", batch_size=8, rank=0, world_size=1, num_workers=0)
    assert len(epoch_keys(stream)) == 6
    short = stream.shortfall()
    assert short is not None and short.shards_failed == 0 and (short.expected, short.read) == (8, 6)


def test_bucketing_reduces_padding(shard_sets):
    def padding(bucketing: bool) -> float:
        stream = make_stream(shard_sets["varied"], mode="exact", batch_size=4, rank=0,
                             world_size=1, num_workers=0, bucketing=bucketing, bucket_batches=6)
        pad = total = 0
        for batch in stream:
            pad += batch.audio.numel() - int(batch.lengths.sum())
            total += batch.audio.numel()
        return pad / total

    unsorted, bucketed = padding(False), padding(True)
    assert bucketed < 0.5 * unsorted


def test_batch_label_views_and_to(shard_sets):
    stream = make_stream(shard_sets["many"], mode="exact", batch_size=40, rank=0, world_size=1,
                         num_workers=0)
    (batch,) = list(stream)
    by_key = dict(zip(batch.keys, range(len(batch))))
    i, u = by_key["many-004"], by_key["many-005"]  # labelled (4 % 3 = 1), unlabelled (5 % 3 = 2)
    assert (batch.meta[i]["emotion"], batch.meta[i]["speaker"], batch.meta[i]["corpus"]) == ("neutral", "s1", "tones")
    assert (batch.meta[u]["emotion"], batch.meta[u]["speaker"]) == (None, None)
    assert batch.labelled[i] and not batch.labelled[u]
    assert torch.allclose(batch.attributes[i, :2], torch.tensor([0.5, 0.2]))
    assert torch.isnan(batch.attributes[i, 2]) and torch.isnan(batch.attributes[u]).all()
    assert batch.meta[i]["extra"]["num_samples"] == int(batch.lengths[i])
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.keys == batch.keys and moved.meta == batch.meta
    assert batch.audio.shape == (40, int(batch.lengths.max())) and batch.lengths.dtype == torch.int64


def test_resolve_shards_accepts_dirs_globs_braces_lists_and_urls(shard_sets, tmp_path):
    root = shard_sets["many"]
    names = [str(root / f"shard-00000{i}.tar") for i in range(5)]
    assert resolve_shards(root) == names
    assert resolve_shards(str(root / "shard-*.tar")) == names
    assert resolve_shards(str(root / "shard-{000001..000003}.tar")) == names[1:4]
    assert resolve_shards([root / "shard-000000.tar", str(shard_sets["few"])])[:2] == \
        [names[0], str(shard_sets["few"] / "shard-000000.tar")]
    assert resolve_shards("s3://bucket/set/shard-{000000..000002}.tar") == \
        [f"s3://bucket/set/shard-00000{i}.tar" for i in range(3)]
    assert resolve_shards("pipe:cat /x/a.tar") == ["pipe:cat /x/a.tar"]
    with pytest.raises(StreamError, match=r"not found: .*shard-000005.tar, .* and 2 more"):
        resolve_shards(str(root / "shard-{000004..000009}.tar"))
    with pytest.raises(StreamError, match="matches no files"):
        resolve_shards(str(root / "nothing-*.tar"))
    with pytest.raises(StreamError, match="no shard-\\*.tar files"):
        resolve_shards(tmp_path)


def test_pipe_urls_are_read_like_files(shard_sets):
    index = read_index(shard_sets["few"])
    urls = [f"pipe:cat {path}" for path in index.shards]
    keys = epoch_keys(make_stream(urls, mode="exact", batch_size=4, rank=0, world_size=1,
                                  num_workers=0))
    assert sorted(keys) == sorted(all_keys(shard_sets["few"]))
    with pytest.raises(StreamError, match="pass samples_per_epoch"):  # no index through a pipe
        make_stream(urls, mode="train", rank=0, world_size=1)
    assert len(make_stream(urls, mode="train", batch_size=4, samples_per_epoch=6, rank=0,
                           world_size=1)) == 2


@pytest.fixture
def http_root(tmp_path):
    """A loopback HTTP server over ``tmp_path``; yields (folder, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.mark.skipif(shutil.which("curl") is None, reason="webdataset reads http:// through curl")
def test_a_shard_set_is_streamed_over_http_from_its_index(shard_sets, http_root):
    folder, base = http_root
    shutil.copytree(shard_sets["many"], folder / "many")
    for spec in (f"{base}/many/", f"{base}/many/index.json"):
        assert resolve_shards(spec) == [f"{base}/many/shard-00000{i}.tar" for i in range(5)]
    stream = make_stream(f"{base}/many/", mode="exact", batch_size=8, rank=0, world_size=1,
                         num_workers=2)
    assert sorted(epoch_keys(stream)) == sorted(all_keys(shard_sets["many"]))
    assert stream.shortfall() is None and stream.expected_samples == 40

    (folder / "many" / "shard-000002.tar").unlink()  # a 404: one failed shard, the rest read
    stream = make_stream(f"{base}/many/", mode="exact", batch_size=8, rank=0, world_size=1,
                         num_workers=0)
    assert len(epoch_keys(stream)) == 32
    short = stream.shortfall()
    assert short is not None and short.failed_shards == [f"{base}/many/shard-000002.tar"]


def test_train_mode_without_an_index_needs_samples_per_epoch(shard_sets, tmp_path):
    for shard in shard_sets["few"].glob("shard-*.tar"):
        shutil.copy(shard, tmp_path)
    with pytest.raises(StreamError, match="pass samples_per_epoch"):
        make_stream(tmp_path, mode="train", rank=0, world_size=1)
    assert len(make_stream(tmp_path, mode="train", batch_size=4, samples_per_epoch=10,
                           rank=0, world_size=1)) == 3


def test_resolve_rank_order(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_rank() == (0, 1)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_rank() == (2, 4)
    assert resolve_rank(1, 2) == (1, 2)
    with pytest.raises(StreamError, match="both rank and world_size"):
        resolve_rank(rank=1)
    with pytest.raises(StreamError, match="invalid rank 3"):
        resolve_rank(3, 2)


def test_bad_settings_are_refused(shard_sets):
    with pytest.raises(StreamError, match="either shards or sources"):
        make_stream()
    with pytest.raises(StreamError, match="mode must be"):
        make_stream(shard_sets["few"], mode="valid")  # type: ignore[arg-type]
    with pytest.raises(StreamError, match="crop_seconds must be positive"):
        make_stream(shard_sets["few"], crop_seconds=0)
