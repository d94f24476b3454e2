"""Utterance functionals: per-band statistics of a feature map, as a module and as a front-end.

For each of the F input bands, over the utterance's valid frames: the mean, the standard
deviation, the given quantiles (linear interpolation, as ``torch.quantile``) and the mean
absolute frame-to-frame change; for the band-averaged level: its mean, standard deviation and
maximum. With ``cepstra: N`` the same band functionals are also taken of each frame's first N
cepstral coefficients (an orthonormal DCT over the bands: MFCCs when the input is a log-mel
map), whose quantiles describe the spectral envelope's shape rather than each band's level.
With ``moments: true``, also each of those rows' skewness and kurtosis (appended last).
With ``temporal: true`` the front-end appends six timing functionals of its base's energy VAD
(:func:`temporal_functionals`, after eGeMAPS's temporal parameters): the rate and lengths of
voiced segments and pauses, which a VAD that keeps only the voiced frames otherwise discards.

:class:`Functionals` is the parameter-free computation (``utterance_stats`` and
``with_functionals`` compute it inside the model). The ``functionals`` front-end computes it
after a frame-level front-end and returns the vector as a one-frame feature map ``[B, D, 1]``.
That is what makes ``frontend.speaker_norm`` standardise each *functional* per speaker (its
statistics over a speaker's frames are then over their utterances), rather than only each band
before the functionals are taken: on RAVDESS under EmoBox's folds, with the same functionals
and head, 0.649 validation UA instead of 0.588 and 0.592 test UA instead of 0.564
(``bench/recipes/ravdess_emobox``, round 3).
"""

from __future__ import annotations

import typing
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor, nn

from ssl_ser import SAMPLE_RATE
from ssl_ser.config import ConfigError
from ssl_ser.features import FRONTENDS, Frontend, VADFrontend, build_frontend, mask_frames, voiced_span
from ssl_ser.models.layers import masked_mean, time_mask

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def masked_quantiles(x: Tensor, lengths: Tensor, qs: Tensor) -> Tensor:
    """``[B, F, T] -> [B, F, Q]``: quantiles ``qs`` of each row's valid frames, per feature,
    interpolated linearly between order statistics (``torch.quantile``'s default)."""
    valid = time_mask(lengths, x.shape[-1])[:, None, :]
    ordered = x.masked_fill(~valid, float("inf")).sort(-1).values
    position = qs.to(x.dtype)[None, :] * (lengths[:, None] - 1).to(x.dtype)  # [B, Q]
    below = position.floor().long()
    above = position.ceil().long()
    frac = (position - below.to(x.dtype))[:, None, :]
    index = lambda i: i[:, None, :].expand(-1, x.shape[1], -1)  # noqa: E731
    low, high = ordered.gather(-1, index(below)), ordered.gather(-1, index(above))
    return low + frac * (high - low)


class Functionals(nn.Module):
    """``[B, F, T]`` with frame ``lengths [B]`` -> ``[B, num_functionals]`` (module docstring)."""

    qs: Tensor
    dct: Tensor | None

    def __init__(self, in_features: int, quantiles: tuple[float, ...] = QUANTILES, cepstra: int = 0,
                 moments: bool = False, *, owner: str = "functionals") -> None:
        super().__init__()
        if any(not 0.0 <= q <= 1.0 for q in quantiles):
            raise ConfigError(f"{owner}: quantiles must lie in [0, 1], got {quantiles}")
        if not 0 <= cepstra <= in_features:
            raise ConfigError(f"{owner}: cepstra must lie in [0, {in_features}] (the input's bands), got {cepstra}")
        self.register_buffer("qs", torch.tensor(quantiles, dtype=torch.float32), persistent=False)
        self.register_buffer("dct", AF.create_dct(cepstra, in_features, "ortho") if cepstra else None,
                             persistent=False)
        self.moments = moments
        self.num_functionals = (in_features + cepstra) * (3 + len(quantiles) + 2 * moments) + 3

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        level = x.mean(1)  # [B, T]: padded frames are zero here and masked below
        if self.dct is not None:  # padded frames stay zero
            x = torch.cat([x, torch.einsum("bft,fc->bct", x, self.dct.to(x.dtype))], 1)
        valid = time_mask(lengths, x.shape[-1])[:, None, :].to(x.dtype)
        count = lengths[:, None].to(x.dtype)
        rows = torch.cat([x, level[:, None]], 1)  # the bands and the level: one mean and sd
        mean = masked_mean(rows, lengths)
        std = ((((rows - mean[..., None]) * valid) ** 2).sum(-1) / count).clamp(min=1e-8).sqrt()
        change = ((x[..., 1:] - x[..., :-1]).abs() * valid[..., 1:]).sum(-1) / (count - 1).clamp(min=1)
        level_max = level.masked_fill(valid[:, 0] == 0, float("-inf")).amax(-1, keepdim=True)
        quantiles = masked_quantiles(x, lengths, self.qs).flatten(1)
        out = [mean[:, :-1], std[:, :-1], quantiles, change, mean[:, -1:], std[:, -1:], level_max]
        if self.moments:  # standardised third and fourth moments of the bands (not the level)
            z = (x - mean[:, :-1, None]) / std[:, :-1, None] * valid
            out += [(z**3).sum(-1) / count, (z**4).sum(-1) / count]
        return torch.cat(out, 1)


TEMPORAL = ("speech_seconds", "voiced_share", "segments_per_second", "segment_seconds", "pause_seconds",
            "pauses_per_second")
"""The rows of :func:`temporal_functionals`, in order."""


def temporal_functionals(voiced: Tensor, hop_seconds: float) -> Tensor:
    """``[B, T]`` VAD decisions (False past a row's length) -> ``[B, 6]`` timing functionals
    (:data:`TEMPORAL`), after eGeMAPS's temporal parameters (Eyben et al. 2016), over the speech
    span from the first voiced frame to the last: its length in seconds, the voiced share of it,
    voiced segments per second, their mean length, the mean length of the pauses between them
    and pauses per second. Silence before and after the span is left out: its length is how a
    corpus cut its clips, not how the speaker spoke. A row without a voiced frame is all zeros.
    """
    voiced = voiced.to(torch.float32)
    span = voiced_span(voiced.bool()).sum(-1).to(torch.float32)
    count = voiced.sum(-1)
    onsets = (voiced - F.pad(voiced, (1, 0))[:, :-1]).clamp(min=0).sum(-1)  # voiced segments
    pauses = (onsets - 1).clamp(min=0)
    seconds = span * hop_seconds
    per = lambda x, n: x / n.clamp(min=1)  # noqa: E731  (0 where nothing was counted)
    return torch.stack([seconds, per(count, span), per(onsets, seconds.clamp(min=hop_seconds)),
                        per(count, onsets) * hop_seconds, per(span - count, pauses) * hop_seconds,
                        per(pauses, seconds.clamp(min=hop_seconds))], -1)


#: The base front-end when none is given: 128 log-mel bands of 64-ms frames at a 16-ms hop (the
#: 64-ms window beat 25 ms on RAVDESS's validation actors: bench/recipes/ravdess_emobox).
DEFAULT_BASE: dict[str, Any] = {"name": "logmel", "n_mels": 128, "n_fft": 1024, "hop_length": 256}


def frame_level_base(base: dict[str, Any], owner: str, refused: tuple[str, ...]) -> Frontend:
    """The ``base`` front-end of the functionals front-end ``owner``: a named frame-level one,
    neither functionals front-end nor ``owner`` itself, without the ``refused`` options."""
    options = dict(base)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"front-end {owner!r}: base needs a name, e.g. base: {{name: logmel, n_mels: 64}}")
    if name in ("functionals", owner) or any(key in options for key in refused):
        raise ConfigError(f"front-end {owner!r}: base must be a frame-level front-end without "
                          f"{' or '.join(refused)} (set speaker_norm on the {owner} front-end)")
    return build_frontend(name, **options)


@FRONTENDS.register("functionals")
class FunctionalsFrontend(Frontend):
    """A frame-level front-end (``base``), then :class:`Functionals` of its whole output:
    ``feats [B, num_functionals, 1]``, one "frame" per utterance. Crops act on the waveform and
    the feature cache holds this vector; SpecAugment has no time-frequency map left to act on,
    so neither this front-end nor its base takes it."""

    describes_utterance = True

    def __init__(self, base: dict[str, Any] | None = None, quantiles: tuple[float, ...] = QUANTILES,
                 cepstra: int = 0, moments: bool = False, temporal: bool = False) -> None:
        super().__init__()
        self.base = frame_level_base(DEFAULT_BASE if base is None else base, "functionals",
                                     refused=("specaugment", "speaker_norm"))
        if temporal and not isinstance(self.base, VADFrontend):
            raise ConfigError("front-end 'functionals': temporal needs a base with an energy VAD "
                              f"(logmel or mfcc), got {type(self.base).__name__}")
        self.functionals = Functionals(self.base.num_features, tuple(quantiles), cepstra, moments,
                                       owner="front-end 'functionals'")
        self.temporal = temporal
        self.num_features = self.functionals.num_functionals + len(TEMPORAL) * temporal

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats, frames = self.base.compute(wave, lengths)
        vector = self.functionals(mask_frames(feats, frames), frames)
        if self.temporal:  # the base's VAD decisions, whether or not it keeps only the voiced frames
            base = typing.cast(VADFrontend, self.base)
            hop = base.hop_length / SAMPLE_RATE
            vector = torch.cat([vector, temporal_functionals(base.voiced(wave, lengths), hop).to(vector.dtype)], 1)
        return vector.unsqueeze(-1), torch.ones_like(frames)

    def frames(self, num_samples: int) -> int:
        return 1


@FRONTENDS.register("plus_functionals")
class PlusFunctionalsFrontend(Frontend):
    """A frame-level front-end (``base``) with the utterance's functionals appended as rows:
    ``feats [B, F + D, T]``, the D rows of :class:`FunctionalsFrontend` (options
    ``functionals``) repeated over the base's valid frames.

    Why: ``frontend.speaker_norm`` then standardises the base's bands *and* every functional
    per speaker (a repeated row's statistics over a speaker's frames are those of their
    utterances, weighted by length), so a CNN can sit beside the speaker-normalised functional
    vector in one model (``model: {name: with_functionals, bands: F}`` splits the rows again).
    SpecAugment and the frequency warp, if the base has them, act on the base's rows only. With
    ``data.feature_cache`` the training crops are cut from the cached whole-utterance map, so the
    appended rows describe the whole utterance in training as at test; without it, the crop.
    Segment jobs (``data.segment``) are refused: their test segments would describe themselves.
    """

    describes_utterance = True

    def __init__(self, base: dict[str, Any] | None = None, functionals: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.base = frame_level_base(base if base is not None else {"name": "logmel"}, "plus_functionals",
                                     refused=("speaker_norm",))
        self.functionals = build_frontend("functionals", **(functionals or {}))
        self.bands = self.base.num_features
        self.num_features = self.bands + self.functionals.num_features

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats, frames = self.base.compute(wave, lengths)
        vector, _ = self.functionals.compute(wave, lengths)
        return torch.cat([feats, vector.expand(-1, -1, feats.shape[-1])], 1), frames

    def augment(self, feats: Tensor, frame_lengths: Tensor) -> Tensor:
        if not self.training:
            return feats
        bands = self.base.augment(feats[:, : self.bands], frame_lengths)
        return torch.cat([bands, feats[:, self.bands :].to(bands.dtype)], 1)

    def frames(self, num_samples: int) -> int:
        return self.base.frames(num_samples)
