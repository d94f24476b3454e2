from __future__ import annotations

import pytest
import torch
import torchaudio

from ssl_ser.config import ConfigError
from ssl_ser.functionals import masked_quantiles
from ssl_ser.models import build_model


def test_quantiles_are_torch_quantile_over_valid_frames_only() -> None:
    torch.manual_seed(0)
    x, lengths = torch.randn(3, 5, 17), torch.tensor([17, 9, 1])
    x[1, :, 9:] = 1e6  # padding must not move any quantile
    qs = torch.tensor([0.0, 0.1, 0.5, 0.93, 1.0])
    got = masked_quantiles(x, lengths, qs)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[row], torch.quantile(x[row, :, :n], qs, dim=-1).T)


def test_functionals_of_a_known_utterance() -> None:
    model = build_model("utterance_stats", in_features=2, num_classes=3, quantiles=(0.5,), hidden=())
    x = torch.tensor([[[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 4.0, 0.0]]])  # frame 4 is padding
    f = model.functionals(x, torch.tensor([3]))
    expected = [2.0, 4 / 3,                                          # band means
                (2 / 3) ** 0.5, (32 / 9) ** 0.5,                     # band standard deviations
                2.0, 0.0,                                            # band medians
                1.5, 2.0,                                            # mean absolute change
                5 / 3, (((0.5 - 5 / 3) ** 2 + (1.5 - 5 / 3) ** 2 + (3 - 5 / 3) ** 2) / 3) ** 0.5, 3.0]  # level
    torch.testing.assert_close(f[0], torch.tensor(expected))
    assert model.embedding_dim == model.num_functionals == 11


def test_no_hidden_layer_is_logistic_regression_on_standardised_functionals() -> None:
    model = build_model("utterance_stats", in_features=4, num_classes=3, hidden=(), dropout=0.0).eval()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [model.classifier]


def test_cepstra_add_the_band_functionals_of_the_dct_of_each_frame() -> None:
    torch.manual_seed(0)
    x, lengths = torch.randn(2, 6, 9), torch.tensor([9, 5])
    plain = build_model("utterance_stats", in_features=6, num_classes=3, quantiles=(0.5,))
    cep = build_model("utterance_stats", in_features=6, num_classes=3, quantiles=(0.5,), cepstra=4)
    assert cep.num_functionals == plain.num_functionals + 4 * 4
    dct = torchaudio.functional.create_dct(4, 6, "ortho")
    c = torch.einsum("bft,fc->bct", x, dct)
    got = cep.functionals(x, lengths)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[row, 6:10], c[row, :, :n].mean(-1))     # cepstral means follow the band means
        torch.testing.assert_close(got[row, -3:], plain.functionals(x, lengths)[row, -3:])  # level: bands only


def test_bad_options_are_one_line() -> None:
    with pytest.raises(ConfigError, match="cepstra must lie in"):
        build_model("utterance_stats", in_features=6, num_classes=3, cepstra=7)
    with pytest.raises(ConfigError, match="quantiles must lie in"):
        build_model("utterance_stats", in_features=6, num_classes=3, quantiles=(1.5,))


def test_a_training_batch_of_one_utterance_trains() -> None:
    model = build_model("utterance_stats", in_features=6, num_classes=3).train()
    out = model(torch.randn(1, 6, 9), torch.tensor([9]))
    out["logits"].sum().backward()
    assert torch.isfinite(out["logits"]).all() and model.classifier.weight.grad is not None
