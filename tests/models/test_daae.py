from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssl_ser.models import build_model


def _model(**options):
    torch.manual_seed(0)
    return build_model("daae", in_features=129, num_classes=4, size="tiny", num_speakers=5, num_corpora=3,
                       **options)


def test_outputs_for_a_265ms_segment() -> None:
    model = _model().eval()
    x = torch.randn(2, 129, 32)
    out = model(x, torch.tensor([32, 32]))
    assert out["recon"].shape == x.shape
    assert out["latent"].shape == (2, 32, model.encode(x, torch.tensor([32, 32])).shape[-1])
    assert out["latent_emotion_logits"].shape == (2, 4)
    assert out["speaker_logits"].shape == (2, 5) and out["corpus_logits"].shape == (2, 3)
    assert out["logits"].shape == (2, 4) and out["embedding"].shape == (2, model.embedding_dim)


def _encoder_grad(model, x, lengths, head: str) -> torch.Tensor:
    model.zero_grad()
    F.cross_entropy(model(x, lengths)[head], torch.tensor([0, 1])).backward()
    return model.to_latent.weight.grad.clone()


def test_domain_heads_reach_the_encoder_through_gradient_reversal() -> None:
    model = _model().eval()
    x, lengths = torch.randn(2, 129, 32), torch.tensor([32, 28])
    for head in ("speaker_logits", "corpus_logits"):
        reversed_ = _encoder_grad(model, x, lengths, head)
        model.set_grl_lambda(0.5)
        half = _encoder_grad(model, x, lengths, head)
        model.set_grl_lambda(1.0)
        model.grl, grl = nn.Identity(), model.grl  # the same network without reversal
        plain = _encoder_grad(model, x, lengths, head)
        model.grl = grl
        torch.testing.assert_close(reversed_, -plain)
        torch.testing.assert_close(half, -0.5 * plain)
        assert plain.abs().sum() > 0


def test_domain_heads_themselves_learn_normally() -> None:
    model = _model().eval()
    x, lengths = torch.randn(2, 129, 32), torch.tensor([32, 32])
    grads = []
    for value in (1.0, 0.25):
        model.set_grl_lambda(value)
        model.zero_grad()
        F.cross_entropy(model(x, lengths)["speaker_logits"], torch.tensor([0, 4])).backward()
        grads.append(model.speaker[-1].weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_classifier_loss_trains_both_branches_but_not_the_domain_heads() -> None:
    model = _model().train()
    out = model(torch.randn(2, 129, 32), torch.tensor([32, 30]))
    F.cross_entropy(out["logits"], torch.tensor([1, 2])).backward()
    assert model.to_deep.weight.grad.abs().sum() > 0  # R_d (queries)
    assert model.to_latent.weight.grad.abs().sum() > 0  # R_l (keys, and R_c)
    assert model.speaker[0].weight.grad is None and model.decoder[0][0].weight.grad is None


def test_reset_classifier_replaces_both_emotion_layers() -> None:
    model = _model().eval()
    model.reset_classifier(6)
    out = model(torch.randn(1, 129, 32), torch.tensor([32]))
    assert out["logits"].shape == (1, 6) and out["latent_emotion_logits"].shape == (1, 6)
    assert out["speaker_logits"].shape == (1, 5)
