"""Domain-adversarial autoencoder with attention-based feature fusion (Gao et al. 2021).

Input: a 265-ms segment's ``[B, 129, 32]`` log spectrogram (``spectrogram_daae``; frequency x
time). Every representation below is a sequence over the segment's frames (frequency is
folded into the features), so attention and the BLSTM run along time inside one segment:

- a convolutional autoencoder: the encoder (stride-2 convolutions along frequency) gives the
  latent sequence ``R_l`` ``[B, T, latent_dim]``; the decoder (transposed convolutions)
  reconstructs the input (``recon``, same shape as ``x``);
- on the time-averaged ``R_l``: an emotion head (``latent_emotion_logits``) and, behind a
  gradient-reversal layer (backward gradient scaled by ``-lambda``), a speaker head and a
  corpus head (``speaker_logits``, ``corpus_logits``) that push ``R_l`` to be speaker- and
  corpus-invariant;
- a deep CNN branch (3x3 convolutions with frequency pooling) gives ``R_d`` ``[B, T, model_dim]``;
- ``R_c`` = a fully connected layer on the concatenation of ``R_d`` and ``R_l``;
- multi-head attention fuses them with queries from ``R_d``, keys from ``R_l`` and values from
  ``R_c``: ``R_f`` ``[B, T, model_dim]``;
- a BLSTM classifier reads ``R_f`` over the segment's frames; its final forward and backward
  states, concatenated, are the embedding and feed the emotion classifier (``logits``).
  Utterance decisions come from combining the segments' outputs (the trainer's job).

Sizes: ``full`` and ``tiny``; the paper fixes the structure, not every width, so the full
widths (latent 128, model 128, 4 heads, BLSTM 128 per direction) are ours, configurable.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ssl_ser.config import ConfigError
from ssl_ser.models import MODELS
from ssl_ser.models.base import SERModel, fresh_layer, from_preset
from ssl_ser.models.layers import (
    GradientReversal,
    conv_lengths,
    mask_sequence,
    mask_time,
    masked_mean,
    time_mask,
)

PRESETS: dict[str, dict[str, Any]] = {
    "full": dict(encoder_channels=(32, 64, 64), latent_dim=128, cnn_channels=(32, 64, 128, 128), model_dim=128,
                 num_heads=4, lstm_hidden=128, head_hidden=128),
    "tiny": dict(encoder_channels=(4, 8, 8), latent_dim=16, cnn_channels=(4, 8, 8, 8), model_dim=16,
                 num_heads=2, lstm_hidden=8, head_hidden=16),
}


def _head(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(), nn.Linear(hidden, cout))


def _frames(maps: Tensor) -> Tensor:
    """``[B, C, F, T] -> [B, T, C * F]``: one feature vector per frame."""
    return maps.flatten(1, 2).transpose(1, 2)


@MODELS.register("daae")
class DAAE(SERModel):
    frontend = "spectrogram_daae"
    segment_seconds = 0.265

    def __init__(self, in_features: int, num_classes: int, size: Literal["tiny", "full"] = "full",
                 num_speakers: int = 10, num_corpora: int = 2, grl_lambda: float = 1.0,
                 encoder_channels: tuple[int, ...] | None = None, latent_dim: int | None = None,
                 cnn_channels: tuple[int, ...] | None = None, model_dim: int | None = None,
                 num_heads: int | None = None, lstm_hidden: int | None = None,
                 head_hidden: int | None = None) -> None:
        super().__init__(in_features, num_classes)
        arch = from_preset(PRESETS, size, "daae", encoder_channels=encoder_channels, latent_dim=latent_dim,
                           cnn_channels=cnn_channels, model_dim=model_dim, num_heads=num_heads,
                           lstm_hidden=lstm_hidden, head_hidden=head_hidden)
        enc, cnn = tuple(arch["encoder_channels"]), tuple(arch["cnn_channels"])
        latent, dim, hidden = arch["latent_dim"], arch["model_dim"], arch["head_hidden"]
        heads, lstm = arch["num_heads"], arch["lstm_hidden"]
        if dim % heads:

            raise ConfigError(f"model 'daae': model_dim ({dim}) must be divisible by num_heads ({heads})")

        # Autoencoder: stride 2 along frequency only, so every frame keeps its latent vector.
        heights = [in_features]
        self.encoder = nn.ModuleList()
        cin = 1
        for c in enc:
            self.encoder.append(nn.Sequential(nn.Conv2d(cin, c, 3, stride=(2, 1), padding=1, bias=False),
                                              nn.BatchNorm2d(c), nn.ReLU()))
            heights.append(conv_lengths(heights[-1], 3, 2, 1))
            cin = c
        self.to_latent = nn.Linear(enc[-1] * heights[-1], latent)
        self.from_latent = nn.Sequential(nn.Linear(latent, enc[-1] * heights[-1]), nn.ReLU())
        self.decoder = nn.ModuleList()
        outs = list(enc[-2::-1]) + [1]
        for i, (c_in, c_out) in enumerate(zip(enc[::-1], outs)):
            h_in, h_out = heights[-1 - i], heights[-2 - i]
            layer: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 3, stride=(2, 1), padding=1,
                                                         output_padding=(h_out - (2 * h_in - 1), 0))]
            if c_out != 1:
                layer += [nn.BatchNorm2d(c_out), nn.ReLU()]
            self.decoder.append(nn.Sequential(*layer))
        self._latent_shape = (enc[-1], heights[-1])

        # Heads on the latent representation; the domain heads sit behind gradient reversal.
        self.grl = GradientReversal(grl_lambda)
        self.latent_emotion = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU())
        self.speaker = _head(latent, hidden, num_speakers)
        self.corpus = _head(latent, hidden, num_corpora)

        # Deep CNN branch: 3x3 convolutions, pooling frequency only.
        self.cnn = nn.ModuleList()
        cin, height = 1, in_features
        for c in cnn:
            self.cnn.append(nn.Sequential(nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                          nn.ReLU(), nn.MaxPool2d((2, 1), ceil_mode=True)))
            height = conv_lengths(height, 2, 2, ceil_mode=True)
            cin = c
        self.to_deep = nn.Linear(cnn[-1] * height, dim)

        # Fusion and the BLSTM classifier.
        self.combine = nn.Linear(dim + latent, dim)
        self.attention = nn.MultiheadAttention(dim, heads, kdim=latent, vdim=dim, batch_first=True)
        self.blstm = nn.LSTM(dim, lstm, batch_first=True, bidirectional=True)
        self.embedding_dim = 2 * lstm
        # Both emotion output layers sit under "classifier." so that transfer learning replaces
        # (and checkpoints skip) them together.
        self.classifier = nn.ModuleDict({"fused": nn.Linear(self.embedding_dim, num_classes),
                                         "latent": nn.Linear(hidden, num_classes)})

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh emotion output layers (BLSTM classifier and latent emotion head) for ``num_classes``."""
        for key, layer in self.classifier.items():
            self.classifier[key] = fresh_layer(layer, num_classes)
        self.num_classes = num_classes

    def set_grl_lambda(self, value: float) -> None:
        """The gradient-reversal scale (often ramped from 0 to 1 during training)."""
        self.grl.lambda_ = float(value)

    def encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``R_l`` ``[B, T, latent_dim]`` (zero past each row's length)."""
        maps = x.unsqueeze(1)
        for layer in self.encoder:
            maps = mask_time(layer(maps), lengths)
        return mask_sequence(self.to_latent(_frames(maps)), lengths)

    def decode(self, latent: Tensor, lengths: Tensor) -> Tensor:
        maps = self.from_latent(latent).transpose(1, 2)  # [B, C * F', T]
        maps = mask_time(maps.reshape(maps.shape[0], *self._latent_shape, maps.shape[-1]), lengths)
        for layer in self.decoder:
            maps = mask_time(layer(maps), lengths)
        return maps.squeeze(1)

    def deep(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``R_d`` ``[B, T, model_dim]``."""
        maps = x.unsqueeze(1)
        for layer in self.cnn:
            maps = mask_time(layer(maps), lengths)
        return self.to_deep(_frames(maps))

    def fuse(self, deep: Tensor, latent: Tensor, lengths: Tensor) -> Tensor:
        """``R_f``: attention with Q = R_d, K = R_l, V = R_c (padded frames are not attended to)."""
        combined = self.combine(torch.cat([deep, latent], dim=-1))
        padding = ~time_mask(lengths, deep.shape[1])
        fused, _ = self.attention(deep, latent, combined, key_padding_mask=padding, need_weights=False)
        return fused

    def classify(self, fused: Tensor, lengths: Tensor) -> Tensor:
        """The BLSTM's final forward and backward states over each row's valid frames, ``[B, 2H]``."""
        packed = pack_padded_sequence(fused, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (state, _) = self.blstm(packed)
        return torch.cat([state[0], state[1]], dim=-1)

    def embed(self, x: Tensor, lengths: Tensor) -> Tensor:
        x, lengths = self.check_input(x, lengths)
        latent = self.encode(x, lengths)
        return self.classify(self.fuse(self.deep(x, lengths), latent, lengths), lengths)

    def forward(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        x, lengths = self.check_input(x, lengths)
        latent = self.encode(x, lengths)
        pooled = masked_mean(latent.transpose(1, 2), lengths)
        reversed_ = self.grl(pooled)
        embedding = self.classify(self.fuse(self.deep(x, lengths), latent, lengths), lengths)
        return {
            "embedding": embedding,
            "logits": self.classifier["fused"](embedding),
            "recon": self.decode(latent, lengths),
            "latent": latent,
            "latent_emotion_logits": self.classifier["latent"](self.latent_emotion(pooled)),
            "speaker_logits": self.speaker(reversed_),
            "corpus_logits": self.corpus(reversed_),
        }
