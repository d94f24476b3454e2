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
