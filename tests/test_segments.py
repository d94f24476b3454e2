import torch

from ssl_ser import segments


def test_split_windows_hops_and_short_utterances() -> None:
    audio = torch.arange(2 * 50, dtype=torch.float32).reshape(2, 50)
    lengths = torch.tensor([50, 7])
    win, lens, owner = segments.split(audio, lengths, seconds=20, hop=10, sample_rate=1)
    # 50 samples, window 20, hop 10 -> starts 0, 10, 20, 30; the 7-sample row gives one padded window
    assert owner.tolist() == [0, 0, 0, 0, 1]
    assert lens.tolist() == [20, 20, 20, 20, 7]
    assert torch.equal(win[1], audio[0, 10:30])
    assert torch.equal(win[4, :7], audio[1, :7]) and torch.all(win[4, 7:] == 0)


def test_pool_is_the_mean_of_each_rows_segments() -> None:
    scores = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    owner = torch.tensor([0, 0, 1])
    assert torch.equal(segments.pool(scores, owner, 2), torch.tensor([[2.0, 1.0], [5.0, 5.0]]))


def test_fixed_windows_weigh_exactly_the_windows_that_windows_gives() -> None:
    """The export's fixed-shape cut: the kept windows and their lengths are windows()'s, in
    order; the rest weigh 0 and have a full length (no empty window reaches a model)."""
    x = torch.randn(3, 2, 50)
    lengths = torch.tensor([50, 23, 7])  # several windows; a partial last stretch; shorter than one
    expected, expected_lengths, owner = segments.windows(x, lengths, 10, 4)
    cut, cut_lengths, weights = segments.fixed_windows(x, lengths, 10, 4)
    assert cut.shape == (3 * (1 + 50 // 4), 2, 10) and weights.shape == (3, 1 + 50 // 4)
    kept = weights.flatten().bool()
    assert torch.equal(torch.bincount(owner, minlength=3), weights.sum(1).long())
    for got, want, length in zip(cut[kept], expected, expected_lengths):
        torch.testing.assert_close(got[..., :length], want[..., :length])
    assert torch.equal(cut_lengths[kept], expected_lengths)
    assert bool((cut_lengths[~kept] == 10).all())


def test_behind_a_vad_the_segments_are_cut_from_the_whole_utterances_voiced_frames() -> None:
    """Tone, 1.5 s of near-silence, tone: the silence gives no segment (cut from the waveform,
    each silent window would keep its own frames, for its VAD follows the window's energy)."""
    from types import SimpleNamespace

    from ssl_ser.features import build_frontend
    from ssl_ser.inference import Predictor
    from ssl_ser.labels import LabelSpace
    from ssl_ser.models import build_model

    t = torch.arange(8000) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t)
    quiet = 1e-4 * torch.randn(24000, generator=torch.Generator().manual_seed(0))
    wave = torch.cat([tone, quiet, tone]).unsqueeze(0)
    lengths = torch.tensor([wave.shape[1]])
    torch.manual_seed(0)
    frontend = build_frontend("spectrogram_daae", vad=True).eval()
    model = build_model("daae", in_features=129, num_classes=4, size="tiny").eval()
    predictor = Predictor(frontend, model, LabelSpace("emotion", ["a", "b", "c", "d"], {}),
                          segment=SimpleNamespace(seconds=0.265, eval_hop=0.265))
    feats, frames, owner = predictor.segment_features(wave, lengths, None)
    voiced, _ = frontend(wave, lengths)
    assert 115 <= voiced.shape[-1] <= 130  # the two 0.5-s tones at 8.25 ms
    assert owner.tolist() == [0] * (voiced.shape[-1] // 32) and feats.shape[1:] == (129, 32)
    torch.testing.assert_close(feats[1], voiced[0, :, 32:64])
    with torch.no_grad():
        expected = torch.softmax(model(feats, frames)["logits"], -1).mean(0)
    torch.testing.assert_close(predictor.outputs(wave, lengths)["probs"][0], expected)
    _, _, waveform_owner = Predictor(build_frontend("spectrogram_daae").eval(), model, predictor.labels,
                                     segment=predictor.segment).segment_features(wave, lengths, None)
    assert len(waveform_owner) == 2500 // 265  # every window of the waveform, silence included
