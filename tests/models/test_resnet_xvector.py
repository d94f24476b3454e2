from __future__ import annotations

import torch

from ssl_ser.features import build_frontend
from ssl_ser.models import build_model
from ssl_ser.models.resnet_xvector import BasicBlock


def _blocks_per_stage(model) -> list[int]:
    return [sum(isinstance(b, BasicBlock) for b in stage) for stage in model.stages]


def test_full_and_thin_are_resnet34() -> None:
    with torch.device("meta"):
        full = build_model("resnet34_xvector", in_features=23, num_classes=4)
        thin = build_model("resnet34_xvector", in_features=23, num_classes=4, size="thin")
    for model, widths in [(full, [64, 128, 256, 512]), (thin, [16, 32, 64, 128])]:
        assert _blocks_per_stage(model) == [3, 4, 6, 3]
        assert [stage[-1].conv2.out_channels for stage in model.stages] == widths
        # 23 MFCCs -> 3 rows after three stride-2 stages; every frame is C * 3 values, per head.
        assert model.pooling.dim == widths[-1] * 3
        assert model.embedding.in_features == model.pooling.num_heads * widths[-1] * 3


def test_options_override_the_size_preset() -> None:
    model = build_model("resnet34_xvector", in_features=23, num_classes=5, size="tiny", widths=[2, 4, 4, 8],
                        num_heads=3, embedding_dim=12)
    assert [stage[-1].conv2.out_channels for stage in model.stages] == [2, 4, 4, 8]
    assert model.pooling.num_heads == 3 and model.embedding_dim == 12


def test_runs_on_mfcc_frontend_output_and_transfers_from_speakers_to_emotions() -> None:
    torch.manual_seed(0)
    frontend = build_frontend("mfcc").eval()
    wave = torch.randn(3, 16000) * 0.1
    feats, lengths = frontend(wave, torch.tensor([16000, 12000, 8000]))
    model = build_model("resnet34_xvector", in_features=frontend.num_features, num_classes=11, size="tiny").eval()
    assert model(feats, lengths)["logits"].shape == (3, 11)  # speaker pretraining head
    xvectors = model.embed(feats, lengths)
    model.reset_classifier(4)  # emotion fine-tuning: same network, new final layer
    out = model(feats, lengths)
    assert out["logits"].shape == (3, 4)
    assert torch.equal(out["embedding"], xvectors)
