from __future__ import annotations

import pytest
import torch

from ssl_ser.config import ConfigError
from ssl_ser.models import build_model


def model():
    torch.manual_seed(0)
    return build_model("with_functionals", in_features=32, num_classes=4, base={"name": "pyresnet", "size": "tiny"},
                       functionals={"hidden": [8]}).eval()


def test_one_classifier_on_both_embeddings_side_by_side() -> None:
    m = model()
    x, lengths = torch.randn(3, 32, 40), torch.tensor([40, 33, 21])
    out = m(x, lengths)
    both = torch.cat([m.base.embed(x, lengths), m.functionals.embed(x, lengths)], 1)
    torch.testing.assert_close(out["embedding"], both)
    torch.testing.assert_close(out["logits"], m.classifier(both))
    assert m.embedding_dim == both.shape[1] == m.base.embedding_dim + 8
    linears = [name for name, mod in m.named_modules() if isinstance(mod, torch.nn.Linear)]
    assert "classifier" in linears and not any(n.endswith(".classifier") for n in linears)


@pytest.mark.parametrize(("base", "message"), [
    ({"size": "tiny"}, "base needs a name"),
    ({"name": "utterance_stats"}, "already is the functionals network"),
])
def test_bad_bases_are_refused_in_one_line(base, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model("with_functionals", in_features=32, num_classes=4, base=base)


def test_bands_split_the_rows_between_the_base_and_an_mlp_on_the_front_ends_functionals() -> None:
    torch.manual_seed(0)
    m = build_model("with_functionals", in_features=32 + 7, num_classes=4, bands=32,
                    base={"name": "pyresnet", "size": "tiny"}, functionals={"hidden": [8]}).eval()
    x, lengths = torch.randn(3, 39, 40), torch.tensor([40, 33, 21])
    x[:, 32:] = torch.randn(3, 7, 1)  # the functionals: one vector repeated over the frames
    out = m(x, lengths)
    both = torch.cat([m.base.embed(x[:, :32], lengths), m.functionals.embed(x[:, 32:, :1], torch.ones(3))], 1)
    torch.testing.assert_close(out["embedding"], both)
    assert m.base.in_features == 32 and m.functionals.in_features == 7


def test_a_segment_model_base_takes_whole_utterances_of_any_length() -> None:
    torch.manual_seed(0)
    m = build_model("with_functionals", in_features=32 + 7, num_classes=4, bands=32,
                    base={"name": "attention_cnn", "size": "tiny"}, functionals={"hidden": [8]}).eval()
    x, lengths = torch.randn(2, 39, 300), torch.tensor([300, 90])
    out = m(x, lengths)
    assert out["logits"].shape == (2, 4)
    # the shorter utterance's padding does not reach its scores
    alone = m(x[1:, :, :90], lengths[1:])
    torch.testing.assert_close(out["logits"][1:], alone["logits"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bands", [0, 32])
def test_bands_must_leave_rows_for_both(bands) -> None:
    with pytest.raises(ConfigError, match=r"bands must lie in \[1, 31\]"):
        build_model("with_functionals", in_features=32, num_classes=4, bands=bands)
