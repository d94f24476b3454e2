"""The one audio gate (ssl_ser.audio.check): the same refusals, in the same words, everywhere."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ssl_ser.audio import AudioRejected, check, load_checked


@pytest.mark.parametrize("data, rate, reason, detail", [
    (np.zeros(0, np.float32), 16_000, "empty", "no audio samples"),
    (np.array([0.1, np.nan, 0.2] * 1000, np.float32), 16_000, "non_finite", "1000 NaN/inf sample(s)"),
    (0.1 * np.ones(160, np.float32), 16_000, "too_short", "0.010 s < min 0.1 s"),
    (np.zeros(16_000, np.float32), 16_000, "silent", "all samples are zero at 16-bit resolution"),
    (np.full(16_000, 1e-6, np.float32), 16_000, "silent", "all samples are zero at 16-bit resolution"),
    (np.full(16_000, 0.5, np.float32), 16_000, "constant", "every sample has the value +0.5000 "
                                                           "(clipped or DC, no signal)"),
])
def test_bad_audio_is_refused_with_a_reason(data, rate, reason, detail) -> None:
    with pytest.raises(AudioRejected) as info:
        check(data, rate)
    assert (info.value.reason, info.value.detail) == (reason, detail)
    assert str(info.value) == f"{reason}: {detail}"


def test_float_audio_beyond_full_scale_is_scaled_not_clipped() -> None:
    t = np.arange(16_000) / 16_000
    loud = (5.0 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # clipping would flatten 87 % of it
    checked = check(loud, 16_000)
    assert checked.peak == pytest.approx(5.0, rel=1e-4)
    assert float(checked.wave.abs().max()) == pytest.approx(1.0)
    assert torch.allclose(checked.wave, torch.from_numpy(loud) / checked.peak)
    quiet = check(0.2 * loud, 16_000)
    assert quiet.peak is None and torch.equal(quiet.wave, torch.from_numpy(0.2 * loud))


def test_integer_pcm_arrays_are_read_at_their_full_scale() -> None:
    t = np.arange(16_000) / 16_000
    pcm = np.round(16_000 * np.sin(2 * np.pi * 200 * t)).astype(np.int16)
    checked = check(pcm, 16_000)
    assert checked.peak is None and torch.allclose(checked.wave, torch.from_numpy(pcm / 32768.0).float())


def test_files_are_downmixed_resampled_and_checked(tmp_path: Path) -> None:
    stereo = np.stack([np.linspace(-0.5, 0.5, 8000), np.linspace(0.5, -0.3, 8000)], 1).astype(np.float32)
    sf.write(str(tmp_path / "s.wav"), stereo, 8000, subtype="FLOAT")
    checked = load_checked(tmp_path / "s.wav")
    assert checked.wave.shape == (16_000,) and checked.peak is None
    with pytest.raises(AudioRejected, match=r"^missing: no such file: .*nothing\.wav$"):
        load_checked(tmp_path / "nothing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF junk")
    with pytest.raises(AudioRejected, match=r"^unreadable: .*junk\.wav: cannot decode audio"):
        load_checked(tmp_path / "junk.wav")


def test_the_shard_builder_stores_loud_float_audio_scaled_and_says_so(tmp_path: Path) -> None:
    import json

    from ssl_ser.audio import decode
    from ssl_ser.data.manifest import utterance, write_manifest
    from ssl_ser.data.shards import build_shards
    from ssl_ser.data.stream import make_stream

    t = np.arange(8000) / 16_000
    loud = (5.0 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    sf.write(str(tmp_path / "loud.wav"), loud, 16_000, subtype="FLOAT")
    write_manifest([utterance(tmp_path / "loud.wav", key="loud", corpus="c")], tmp_path / "m.jsonl")
    report = build_shards(tmp_path / "m.jsonl", tmp_path / "s", workers=1, progress=False)
    assert (report.samples, report.rejected) == (1, 0)
    batch = next(iter(make_stream([str(tmp_path / "s" / "shard-000000.tar")], mode="exact", batch_size=1,
                                  num_workers=0)))
    assert batch.meta[0]["extra"]["normalised_from_peak"] == pytest.approx(5.0, rel=1e-4)
    stored = batch.audio[0, : batch.lengths[0]]
    assert torch.allclose(stored, torch.from_numpy(loud) / 5.0, atol=1e-4)  # the shape survives
    assert json.loads((tmp_path / "s" / "index.json").read_text())["totals"]["rejected"] == 0
    assert decode(tmp_path / "loud.wav")[0].max() > 4.9  # the source file is untouched


def test_decode_clip_reads_the_same_frames_as_a_full_decode_cut_afterwards() -> None:
    from ssl_ser.audio import PCM16_SCALE, decode, decode_clip, encode_flac

    rng = np.random.default_rng(0)
    blob = encode_flac(0.3 * rng.standard_normal(40_000).astype(np.float32))
    full, _ = decode(blob)
    whole, rate = decode_clip(blob)  # 16-bit mono at 16 kHz: its int16 samples, exactly scaled
    assert rate == 16_000 and whole.dtype == np.int16 and whole.shape == (1, 40_000)
    assert np.array_equal(whole * np.float32(PCM16_SCALE), full)
    excesses: list[int] = []
    for start in (0, 1, 4095, 4096, 12_345, 30_000):  # across FLAC block boundaries, up to the end
        def at(excess: int, start: int = start) -> int:
            excesses.append(excess)
            return start
        window, _ = decode_clip(blob, 10_000, at)
        assert np.array_equal(window, whole[:, start:start + 10_000])
    assert set(excesses) == {30_000}
    never, _ = decode_clip(blob, 50_000, lambda excess: pytest.fail("nothing to cut"))  # type: ignore[arg-type,return-value]
    assert np.array_equal(never, whole)


def test_decode_clip_gives_float_for_other_rates_channels_and_depths() -> None:
    from ssl_ser.audio import decode, decode_clip

    t = np.linspace(-0.5, 0.5, 8_000, dtype=np.float32)
    for data, rate, subtype in ((t, 8_000, "PCM_16"), (np.stack([t, -t], 1), 16_000, "PCM_16"),
                                (t, 16_000, "PCM_24")):
        buf = io.BytesIO()
        sf.write(buf, data, rate, format="FLAC", subtype=subtype)
        got, found = decode_clip(buf.getvalue(), 1_000 if rate != 16_000 else None,
                                 lambda excess: pytest.fail("not at 16 kHz"))  # type: ignore[arg-type,return-value]
        assert found == rate and got.dtype == np.float32
        assert np.array_equal(got, decode(buf.getvalue())[0])  # whole: the caller resamples first
