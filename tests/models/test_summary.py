from __future__ import annotations

import re

import pytest

from ssl_ser.cli import main
from ssl_ser.models import MODELS, build_model
from ssl_ser.models.summary import count_parameters, model_table, summarize


def test_table_lists_every_model_with_counts_per_size() -> None:
    table = model_table()
    for name in MODELS.names():
        assert re.search(rf"^{name}\s", table, re.MULTILINE), name
    assert re.search(r"resnet34_xvector\s+mfcc\s+F=23\s+tiny [\d.]+k, thin [\d.]+M, full [\d.]+M", table)
    assert re.search(r"daae\s+spectrogram_daae\s+F=129 x 0.265s", table)


def test_summary_counts_blocks_and_shows_shapes() -> None:
    text = summarize("resnet34_xvector", {"size": "tiny"})
    model = build_model("resnet34_xvector", in_features=23, num_classes=4, size="tiny")
    total = int(re.search(r"^total\s+([\d,]+)", text, re.MULTILINE).group(1).replace(",", ""))
    assert total == count_parameters(model)
    blocks = {m.group(1): int(m.group(2).replace(",", ""))
              for m in re.finditer(r"^(\S+)\s+([\d,]+)\s+\[", text, re.MULTILINE)}
    assert set(blocks) == {"stem", "stages.0", "stages.1", "stages.2", "stages.3", "pooling", "embedding",
                           "classifier"}
    assert sum(blocks.values()) == total
    assert "front-end mfcc: wave [1, 32000] (2 s) -> features [1, 23, " in text
    assert "outputs: embedding [1, 16], logits [1, 4]" in text


def test_segment_models_are_summarised_on_their_segment() -> None:
    text = summarize("daae", {"size": "tiny"})
    assert "wave [1, 4240] (0.265 s) -> features [1, 129, 32]" in text
    assert "recon [1, 129, 32]" in text


def test_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert "pyresnet" in capsys.readouterr().out
    assert main(["models", "attention_cnn", "-o", "size=tiny", "-o", "num_classes=6"]) == 0
    out = capsys.readouterr().out
    assert "num_classes=6" in out and "logits [1, 6]" in out and "features [1, 400, 200]" in out


def test_command_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "vgg16"]) == 2
    assert "unknown model 'vgg16'" in capsys.readouterr().err
    assert main(["models", "daae", "-o", "latent=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'latent'" in err and "latent_dim" in err
    assert main(["models", "daae", "-o", "size"]) == 2
    assert "key.path=value" in capsys.readouterr().err
