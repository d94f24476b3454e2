"""Front-ends: batched waveform -> feature-map transforms that run on the training device.

Every front-end is an ``nn.Module`` built from torchaudio transforms. It takes a zero-padded
batch ``wave [B, T]`` (float32, 16 kHz) with ``lengths [B]`` valid samples and returns
``feats [B, F, T']`` (feature x frame, torchaudio's ``(..., freq, time)`` layout) with
``frame_lengths [B]``; frames past a row's length are zero. Pick one by name from a job config
(``frontend: {name: mfcc, ...options}``) with :func:`build_frontend`.

Framing convention (all STFT front-ends): frame ``t`` is centred on sample ``t * hop`` and the
signal is padded with zeros, so a row of ``n`` samples has ``n // hop`` frames (the frame that
would sit on the very last sample is dropped). Because both the centre padding and the batch
padding are zeros, a row's features are the same whether it is computed alone or in a padded
batch. The Kaldi ``fbank`` front-end keeps Kaldi's own framing (``snip_edges``).

SpecAugment (``specaugment: {freq_mask: F, time_mask: T, n_freq: 2, n_time: 2, freq_warp: W}``)
is applied only in ``train()`` mode, after normalisation, with independent masks (and warp
factors) per example.

Why one module of ~470 lines: the registered front-ends are each short and share the base
class and the masking helpers; splitting them would scatter one registry over many files.
"""

from __future__ import annotations

import difflib
import inspect
import math
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
import torchaudio.transforms as T
from pydantic import ConfigDict, Field, ValidationError, create_model
from torch import Tensor, nn

from ssl_ser import SAMPLE_RATE
from ssl_ser.config import ConfigError, config, from_dict
from ssl_ser.errors import SslSerError
from ssl_ser.registry import Registry

# front-ends in their own modules (they import this one) are loaded on first lookup
FRONTENDS: Registry[type[Frontend]] = Registry("front-end", modules=("ssl_ser.functionals", "ssl_ser.ssl_encoder"))

#: Added before taking logs so that digital silence stays finite.
LOG_OFFSET = 1e-6


class FrontendError(SslSerError, ValueError):
    """A waveform batch a front-end cannot take (wrong shape, lengths out of range)."""


# --- options ---------------------------------------------------------------------------------

def validate_options(target: Callable[..., Any], options: Mapping[str, Any], *, what: str,
                     shared: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check keyword ``options`` against ``target``'s signature and annotations.

    An unknown name raises :class:`ConfigError` naming it and listing the allowed ones (with
    ``shared``: names the caller takes outside ``target``'s signature); a value
    of the wrong type raises one naming the option. Returns the options, coerced by pydantic
    (``"3"`` -> ``3`` for an ``int``, a list -> a tuple for a ``tuple[int, ...]``).
    """
    signature = inspect.signature(target)
    hints = typing.get_type_hints(target)
    fields: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is param.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    for name in options:
        if name not in fields:
            allowed = [*fields, *shared]
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{what}: unknown option {name!r}{hint}; allowed: {', '.join(allowed)}")
    model = create_model(
        f"{what}_options", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)
    try:
        checked = model(**options)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            problems.append(f"missing option {key!r}" if e["type"] == "missing"
                            else f"option {key!r}: {e['msg']} (got {e.get('input')!r})")
        raise ConfigError(f"{what}: " + "; ".join(problems)) from None
    return {name: getattr(checked, name) for name in options}


@config
class SpecAugmentConfig:
    """SpecAugment masks (Park et al. 2019), drawn independently for every example."""

    freq_mask: int = 0
    """Widest frequency mask, in feature bins (0: no frequency masks)."""
    time_mask: int = 0
    """Widest time mask, in frames (0: no time masks)."""
    n_freq: int = 2
    """Number of frequency masks."""
    n_time: int = 2
    """Number of time masks."""
    freq_warp: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Vocal-tract-length-style warp (VTLP, Jaitly and Hinton 2013) of the feature axis: each
    example's bins are stretched by a factor drawn uniformly from [1 - freq_warp, 1 + freq_warp]
    (bin f takes the value at f / factor, linearly interpolated; the top bin repeats past the
    edge), so a few training speakers stand for more voices. Applied before the masks; 0: off."""


@config
class VADConfig:
    """Kaldi's energy VAD (``compute-vad``) of the STFT front-ends (:class:`VADFrontend`).

    A frame is voiced when at least ``proportion`` of the frames within ``context`` of it have
    a log energy (on the 16-bit scale, over the front-end's analysis window) above ``threshold +
    mean_scale * mean log energy``. In a job, ``vad: true`` takes these defaults (Kaldi's) and
    ``vad: {trim: true}`` sets some of them.
    """

    threshold: float = 5.5
    mean_scale: float = 0.5
    context: Annotated[int, Field(ge=0)] = 2
    """Frames on each side of a frame that its decision counts."""
    proportion: Annotated[float, Field(ge=0.0, le=1.0)] = 0.12
    trim: bool = False
    """Keep every frame from the first voiced frame to the last (only the leading and trailing
    silence goes; pauses stay, so neighbouring frames stay neighbours for a convolution) rather
    than only the voiced frames."""


# --- base class ------------------------------------------------------------------------------

class Frontend(nn.Module):
    """Batched waveform -> ``(feats [B, F, T'], frame_lengths [B])``; see the module docstring."""

    num_features: int
    """F, the feature dimension of the output."""

    describes_utterance: ClassVar[bool] = False
    """Rows that summarise the whole utterance (functionals): a segment cut from the audio
    (``data.segment``) would get its own summary at test, not the cached utterance's of training."""

    @classmethod
    def check_files(cls, options: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigError` for a file the front-end reads when built (weights) that is
        not there: the job loader calls it on the driver with the data checks, so a wrong path
        is one line before ``ssl-ser cv`` splits a shard or a worker starts. None by default."""

    def __init__(self, specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__()
        self.specaugment: nn.Module | None = None
        self.freq_warp = 0.0
        if specaugment is not None:
            cfg = (specaugment if isinstance(specaugment, SpecAugmentConfig)
                   else from_dict(SpecAugmentConfig, specaugment, source="frontend.specaugment"))
            self.freq_warp = cfg.freq_warp
            if cfg.freq_mask > 0 or cfg.time_mask > 0:
                self.specaugment = T.SpecAugment(
                    n_time_masks=cfg.n_time if cfg.time_mask > 0 else 0, time_mask_param=cfg.time_mask,
                    n_freq_masks=cfg.n_freq if cfg.freq_mask > 0 else 0, freq_mask_param=cfg.freq_mask,
                    iid_masks=True, zero_masking=True)

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        lengths = check_batch(wave, lengths)
        # Features are computed in float32 even inside a mixed-precision region (STFTs and logs
        # lose too much in half precision), and whatever pads the rows must not leak in.
        with torch.autocast(wave.device.type, enabled=False):
            wave = mask_frames(wave.float().unsqueeze(1), lengths).squeeze(1)
            feats, frame_lengths = self.compute(wave, lengths)
            feats = self.augment(mask_frames(feats, frame_lengths), frame_lengths)
        return feats, frame_lengths

    def augment(self, feats: Tensor, frame_lengths: Tensor) -> Tensor:
        """SpecAugment in ``train()`` mode, else ``feats`` unchanged; also applied on its own to
        cached features (``data.feature_cache``), which are computed once in eval mode."""
        if not self.training or (self.specaugment is None and self.freq_warp == 0):
            return feats
        with torch.autocast(feats.device.type, enabled=False):
            feats = feats.float()
            if self.freq_warp > 0:
                factor = 1 + self.freq_warp * (2 * torch.rand(feats.shape[0], device=feats.device) - 1)
                feats = warp_bins(feats, factor)
            if self.specaugment is not None:
                feats = self.specaugment(feats)
            return mask_frames(feats, frame_lengths)

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The features before SpecAugment; padded frames may hold anything (they are zeroed)."""
        raise NotImplementedError

    def frames(self, num_samples: int) -> int:
        """Frames for ``num_samples`` samples (for the MFCC front-end: before VAD drops any)."""
        raise NotImplementedError

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return torch.tensor([self.frames(int(n)) for n in lengths.tolist()], dtype=torch.int64,
                            device=lengths.device)


def build_frontend(name: str, **options: Any) -> Frontend:
    """The front-end registered as ``name``, with validated ``options``."""
    cls = FRONTENDS.get(name)
    return cls(**validate_options(cls.__init__, options, what=f"front-end {name!r}"))


def check_batch(wave: Tensor, lengths: Tensor) -> Tensor:
    """Validate a ``[B, T]`` batch and its ``[B]`` lengths; returns the lengths as int64."""
    if wave.dim() != 2:
        raise FrontendError(f"front-ends take a [batch, samples] waveform, got shape {list(wave.shape)}")
    lengths = torch.as_tensor(lengths, device=wave.device).long()
    if lengths.shape != (wave.shape[0],):
        raise FrontendError(f"lengths must have shape [{wave.shape[0]}], got {list(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > wave.shape[1]):
        raise FrontendError(f"lengths must lie in [1, {wave.shape[1]}] samples, got {lengths.tolist()}")
    return lengths


def frame_mask(lengths: Tensor, num_frames: int) -> Tensor:
    """``[B, num_frames]`` bool, True for a row's valid frames."""
    return torch.arange(num_frames, device=lengths.device) < lengths[:, None]


def mask_frames(feats: Tensor, lengths: Tensor) -> Tensor:
    """Zero the frames (last axis) past each row's length."""
    return feats * frame_mask(lengths, feats.shape[-1]).unsqueeze(1).to(feats.dtype)


def warp_bins(feats: Tensor, factor: Tensor) -> Tensor:
    """``[B, F, T]`` with row ``b``'s feature axis stretched by ``factor[b]``: bin ``f`` takes the
    value at ``f / factor``, linearly interpolated, clamped to the top bin."""
    bins = feats.shape[1]
    position = (torch.arange(bins, device=feats.device, dtype=feats.dtype)[None, :] / factor[:, None]).clamp(
        max=bins - 1)
    below = position.floor().long()
    above = (below + 1).clamp(max=bins - 1)
    frac = (position - below.to(feats.dtype))[:, :, None]
    take = lambda index: feats.gather(1, index[:, :, None].expand(-1, -1, feats.shape[2]))  # noqa: E731
    low = take(below)
    return low + frac * (take(above) - low)


def masked_mean(feats: Tensor, lengths: Tensor) -> Tensor:
    """Per-row, per-feature mean over valid frames: ``[B, F, T] -> [B, F, 1]``."""
    mask = frame_mask(lengths, feats.shape[-1]).unsqueeze(1).to(feats.dtype)
    return (feats * mask).sum(-1, keepdim=True) / lengths.clamp(min=1)[:, None, None].to(feats.dtype)


def masked_std(feats: Tensor, lengths: Tensor, mean: Tensor) -> Tensor:
    mask = frame_mask(lengths, feats.shape[-1]).unsqueeze(1).to(feats.dtype)
    var = (((feats - mean) * mask) ** 2).sum(-1, keepdim=True) / lengths.clamp(min=1)[:, None, None]
    return var.sqrt()


# --- STFT front-ends ------------------------------------------------------------------------

class _Centred(Frontend):
    """Shared framing of the STFT front-ends: ``n // hop`` centred, zero-padded frames."""

    hop_length: int

    def frames(self, num_samples: int) -> int:
        return max(1, num_samples // self.hop_length)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths, self.hop_length, rounding_mode="floor").clamp(min=1)

    def _keep_frames(self, feats: Tensor, num_samples: int) -> Tensor:
        return feats[..., : self.frames(num_samples)]


class VADFrontend(_Centred):
    """Shared energy VAD of the STFT front-ends (Kaldi's ``compute-vad``, :class:`VADConfig`).

    With a VAD (``vad`` set), the voiced frames (or, with ``trim``, the span from the first to
    the last) are packed to the left and the lengths shrink (:func:`pack_frames`); a row where
    nothing is voiced keeps all its frames rather than becoming empty.
    """

    vad: VADConfig | None
    fixed_width = False
    """Pack the voiced frames into a map as wide as before (:func:`pack_frames_fixed`): set on
    an exported copy, whose shapes cannot depend on the data; the scores are the same."""
    win_length: int

    def _set_vad(self, owner: str, vad: bool | VADConfig | Mapping[str, Any] | None) -> None:
        if isinstance(vad, Mapping):
            vad = from_dict(VADConfig, vad, source=f"{owner}: vad")
        self.vad = vad if isinstance(vad, VADConfig) else VADConfig() if vad else None

    def select_voiced(self, feats: Tensor, frame_lengths: Tensor, wave: Tensor,
                      lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``feats`` with only the voiced frames (or their span) when a VAD is set, else unchanged."""
        if self.vad is None:
            return feats, frame_lengths
        keep = self.voiced(wave, lengths)
        if self.vad.trim:
            keep = voiced_span(keep)
        pack = pack_frames_fixed if self.fixed_width else pack_frames
        return pack(feats, keep, frame_mask(frame_lengths, feats.shape[-1]))

    def log_energy(self, wave: Tensor) -> Tensor:
        """Raw log energy of each frame's ``win_length`` samples on the 16-bit scale, ``[B, T']``."""
        half = self.win_length // 2
        padded = F.pad(wave * 32768.0, (half, self.win_length - half))
        frames = padded.unfold(-1, self.win_length, self.hop_length)[:, : self.frames(wave.shape[-1])]
        return frames.pow(2).sum(-1).clamp(min=torch.finfo(torch.float32).eps).log()

    def voiced(self, wave: Tensor, lengths: Tensor) -> Tensor:
        """Kaldi ``compute-vad`` decisions, ``[B, T']`` bool (False on padded frames), with this
        front-end's VAD options (Kaldi's defaults when it has none)."""
        cfg = self.vad or VADConfig()
        energy = self.log_energy(wave)
        frame_lengths = self.frame_lengths(lengths)
        valid = frame_mask(frame_lengths, energy.shape[-1])
        mean = (energy * valid).sum(-1, keepdim=True) / frame_lengths[:, None]
        above = (energy > cfg.threshold + cfg.mean_scale * mean) & valid
        kernel = torch.ones(1, 1, 2 * cfg.context + 1, device=wave.device)

        def count(mask: Tensor) -> Tensor:  # frames of ``mask`` within the context of each frame
            return F.conv1d(mask.float().unsqueeze(1), kernel, padding=cfg.context).squeeze(1)

        return (count(above) >= count(valid) * cfg.proportion) & valid


@FRONTENDS.register("mfcc")
class MFCC(VADFrontend):
    """23-dim MFCC, 25 ms / 10 ms, energy VAD and per-utterance mean normalisation.

    The x-vector / CopyPaste input, after Kaldi's x-vector recipes: 23 cepstra from 23 mel
    bands between 20 and 7600 Hz, a 25-ms Hamming window (Kaldi's default is its similar
    "povey" window) in a 512-point FFT, natural-log mel energies, orthonormal DCT. Mean normalisation
    subtracts each utterance's mean over its valid frames; then the energy VAD of Kaldi's
    ``compute-vad`` (:class:`VADFrontend`) keeps the voiced frames (Kaldi's order: normalise, then
    select voiced frames).

    Output for a 2-s input: ``[B, 23, <=200]`` (200 frames before VAD).
    """

    def __init__(self, n_mfcc: int = 23, n_mels: int = 23, win_length: int = 400, hop_length: int = 160,
                 n_fft: int = 512, f_min: float = 20.0, f_max: float = 7600.0, normalize: bool = True,
                 vad: bool | VADConfig | dict[str, Any] | None = True,
                 specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__(specaugment)
        if n_mfcc > n_mels:
            raise ConfigError(f"front-end 'mfcc': n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
        if win_length > n_fft:
            raise ConfigError(f"front-end 'mfcc': win_length ({win_length}) cannot exceed n_fft ({n_fft})")
        self.num_features = n_mfcc
        self.hop_length = hop_length
        self.win_length = win_length
        self.normalize = normalize
        self._set_vad("front-end 'mfcc'", vad)
        self.mfcc = T.MFCC(SAMPLE_RATE, n_mfcc=n_mfcc, log_mels=True, melkwargs=dict(
            n_fft=n_fft, win_length=win_length, hop_length=hop_length, n_mels=n_mels, f_min=f_min,
            f_max=f_max, window_fn=torch.hamming_window, center=True, pad_mode="constant"))

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats = self._keep_frames(self.mfcc(wave), wave.shape[-1])
        frame_lengths = self.frame_lengths(lengths)
        if self.normalize:
            feats = feats - masked_mean(feats, frame_lengths)
        return self.select_voiced(feats, frame_lengths, wave, lengths)


def voiced_span(voiced: Tensor) -> Tensor:
    """``[B, T]`` bool: the frames from each row's first voiced frame to its last (none for a
    row without one). Cumulative sums rather than a flip, which every export format takes."""
    seen = voiced.long().cumsum(-1)
    return (seen > 0) & (seen[:, -1:] - seen + voiced.long() > 0)


def pack_frames(feats: Tensor, keep: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Keep the frames where ``keep [B, T]`` is True, packed to the left of each row.

    A row with nothing to keep falls back to its ``valid`` frames, so no row becomes empty.
    Returns the packed ``[B, F, max kept]`` features and the new lengths.
    """
    keep = torch.where(keep.any(-1, keepdim=True), keep, valid)
    new_lengths = keep.sum(-1)
    out = feats.new_zeros(feats.shape[0], feats.shape[1], int(new_lengths.max()))
    rows, cols = keep.nonzero(as_tuple=True)
    target = keep.long().cumsum(-1)[rows, cols] - 1
    out[rows, :, target] = feats[rows, :, cols]
    return out, new_lengths


def pack_frames_fixed(feats: Tensor, keep: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`pack_frames` at a fixed width, for export: the kept frames packed to the left
    of a map as wide as ``feats`` (zeros after them), and their count. Dropped frames are
    scattered to a spare last column that is cut off, so no shape depends on the data."""
    keep = keep | (valid & ~keep.any(-1, keepdim=True))  # nothing voiced: keep every frame (no bool Where in ORT)
    width = feats.shape[-1]
    target = torch.where(keep, keep.long().cumsum(-1) - 1, torch.full_like(keep, width, dtype=torch.long))
    out = feats.new_zeros(feats.shape[0], feats.shape[1], width + 1)
    out = out.scatter(2, target.unsqueeze(1).expand(-1, feats.shape[1], -1), feats)
    return out[..., :width], keep.sum(-1)


@FRONTENDS.register("logmel")
class LogMel(VADFrontend):
    """128-band log-mel spectrogram (LSSED): 1024-sample Hann window, hop 512.

    ``normalize`` z-normalises each band over the utterance's valid frames and ``clip`` then
    clips to ``[-clip, clip]``: the DeepEmoCluster-style setting (registered as
    ``logmel_deepemocluster``). ``vad`` then keeps only the voiced frames (the energy VAD of
    :class:`VADFrontend` over the analysis window, in Kaldi's order as for ``mfcc``): RAVDESS clips
    are about half silence, which otherwise fills training crops and an utterance's low
    quantiles. Output for a 2-s input: ``[B, 128, 62]`` (before a VAD drops frames).
    """

    def __init__(self, n_mels: int = 128, n_fft: int = 1024, win_length: int | None = None,
                 hop_length: int = 512, f_min: float = 0.0, f_max: float | None = None,
                 normalize: bool = False, clip: float | None = None,
                 vad: bool | VADConfig | dict[str, Any] | None = False,
                 specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__(specaugment)
        if clip is not None and clip <= 0:
            raise ConfigError(f"front-end logmel: clip must be positive, got {clip}")
        self.num_features = n_mels
        self.hop_length = hop_length
        self.win_length = win_length if win_length is not None else n_fft
        self.normalize = normalize
        self.clip = clip
        self._set_vad("front-end 'logmel'", vad)
        self.mel = T.MelSpectrogram(SAMPLE_RATE, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                                    f_min=f_min, f_max=f_max, n_mels=n_mels, window_fn=torch.hann_window,
                                    center=True, pad_mode="constant", power=2.0)

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        feats = self._keep_frames(self.mel(wave), wave.shape[-1]).add(LOG_OFFSET).log()
        frame_lengths = self.frame_lengths(lengths)
        if self.normalize:
            mean = masked_mean(feats, frame_lengths)
            feats = (feats - mean) / masked_std(feats, frame_lengths, mean).clamp(min=1e-5)
        if self.clip is not None:
            feats = feats.clamp(-self.clip, self.clip)
        return self.select_voiced(feats, frame_lengths, wave, lengths)


@FRONTENDS.register("logmel_deepemocluster")
class LogMelDeepEmoCluster(LogMel):
    """:class:`LogMel` with DeepEmoCluster's normalisation: per-band z-score, clipped to +/-3.

    Output for a 2-s input: ``[B, 128, 62]``.
    """

    def __init__(self, n_mels: int = 128, n_fft: int = 1024, win_length: int | None = None,
                 hop_length: int = 512, f_min: float = 0.0, f_max: float | None = None,
                 normalize: bool = True, clip: float | None = 3.0,
                 specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__(n_mels=n_mels, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                         f_min=f_min, f_max=f_max, normalize=normalize, clip=clip, specaugment=specaugment)


def check_bins(name: str, num_bins: int, n_fft: int) -> None:
    if not 1 <= num_bins <= n_fft // 2 + 1:
        raise ConfigError(f"front-end {name}: num_bins must lie in [1, {n_fft // 2 + 1}] for n_fft {n_fft}, "
                          f"got {num_bins}")


def mu_law(x: Tensor, mu: float = 255.0) -> Tensor:
    """Continuous mu-law companding ``sgn(x) ln(1 + mu|x|) / ln(1 + mu)`` of ``x`` in [-1, 1]."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mu_law_inverse(y: Tensor, mu: float = 255.0) -> Tensor:
    """The inverse of :func:`mu_law`: ``sgn(y) ((1 + mu)^|y| - 1) / mu``."""
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


@FRONTENDS.register("spectrogram_mulaw")
class SpectrogramMuLaw(VADFrontend):
    """Mu-law companded magnitude spectrogram (Li et al. 2018).

    40 ms Hamming window (640 samples), 10 ms hop, 1600-point FFT (10 Hz bins); the first
    ``num_bins`` = 400 bins (0-3990 Hz, the 0-4 kHz band) are kept. Each utterance's magnitudes
    are scaled into [-1, 1] by its largest valid value (magnitudes are non-negative, so the
    result lies in [0, 1]), then companded with :func:`mu_law`, mu = 255, which lifts the
    low-energy detail. Output for a 2-s input: ``[B, 400, 200]`` (the paper's 400 x 200 map).
    ``vad`` (off by default) then keeps the voiced frames, as for ``logmel``.
    """

    def __init__(self, n_fft: int = 1600, win_length: int = 640, hop_length: int = 160,
                 num_bins: int = 400, mu: float = 255.0,
                 vad: bool | VADConfig | dict[str, Any] | None = False,
                 specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__(specaugment)
        check_bins("spectrogram_mulaw", num_bins, n_fft)
        self.num_features = num_bins
        self.hop_length = hop_length
        self.win_length = win_length
        self.mu = mu
        self._set_vad("front-end 'spectrogram_mulaw'", vad)
        self.spectrogram = T.Spectrogram(n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                                         window_fn=torch.hamming_window, center=True, pad_mode="constant",
                                         power=1.0)

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        magnitude = self._keep_frames(self.spectrogram(wave), wave.shape[-1])[:, : self.num_features]
        frame_lengths = self.frame_lengths(lengths)
        peak = mask_frames(magnitude, frame_lengths).amax(dim=(1, 2), keepdim=True)
        feats = mu_law(magnitude / peak.clamp(min=1e-8), self.mu)
        return self.select_voiced(feats, frame_lengths, wave, lengths)


@FRONTENDS.register("spectrogram_daae")
class SpectrogramDAAE(VADFrontend):
    """Log-power spectrogram of 265-ms segments as 32 x 129 maps (Gao et al. 2021).

    The paper gives 25 ms frames, 265 ms segments and a 32 (time) x 129 (frequency) map.
    129 bins is a 256-point FFT, which cannot hold a 25 ms (400-sample) window at 16 kHz, so we
    take a 512-point FFT of the 400-sample Hamming window and keep its first 129 bins: 0-4 kHz
    in 31.25 Hz steps, the same band a 256-point FFT covers at 8 kHz. 32 frames from a 265-ms
    (4240-sample) segment need a hop of 4240 / 32 = 132.5 samples; we use 132 (8.25 ms), which
    gives ``4240 // 132 = 32`` frames. ``normalize`` z-normalises each bin over the segment.
    Output for a 265-ms segment: ``[B, 129, 32]``; for a 2-s input: ``[B, 129, 242]``.
    ``vad`` (off by default) then keeps the voiced frames, as for ``logmel``: a 265-ms training
    segment drawn from silence carries its clip's emotion label and nothing of the emotion.
    """

    def __init__(self, n_fft: int = 512, win_length: int = 400, hop_length: int = 132,
                 num_bins: int = 129, normalize: bool = False,
                 vad: bool | VADConfig | dict[str, Any] | None = False,
                 specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__(specaugment)
        check_bins("spectrogram_daae", num_bins, n_fft)
        self.num_features = num_bins
        self.hop_length = hop_length
        self.win_length = win_length
        self.normalize = normalize
        self._set_vad("front-end 'spectrogram_daae'", vad)
        self.spectrogram = T.Spectrogram(n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                                         window_fn=torch.hamming_window, center=True, pad_mode="constant",
                                         power=2.0)

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        power = self._keep_frames(self.spectrogram(wave), wave.shape[-1])[:, : self.num_features]
        feats = power.add(LOG_OFFSET).log()
        frame_lengths = self.frame_lengths(lengths)
        if self.normalize:
            mean = masked_mean(feats, frame_lengths)
            feats = (feats - mean) / masked_std(feats, frame_lengths, mean).clamp(min=1e-5)
        return self.select_voiced(feats, frame_lengths, wave, lengths)


# --- Kaldi fbank -----------------------------------------------------------------------------

@FRONTENDS.register("fbank")
class KaldiFbank(Frontend):
    """Kaldi-compatible log mel filterbank (``torchaudio.compliance.kaldi.fbank``).

    The speaker-model input of the wespeaker recipes: 80 bins, 25 ms / 10 ms, Hamming window,
    samples on the 16-bit scale, Kaldi framing (``snip_edges``: ``1 + (n - 400) // 160``
    frames), ``dither`` only in training, then per-utterance mean subtraction (``cmn``).
    Kaldi's function takes one signal at a time, so rows are computed one after another, on
    the batch's device. Rows shorter than one window are zero-padded to one frame.
    Output for a 2-s input: ``[B, 80, 198]``.
    """

    def __init__(self, num_mel_bins: int = 80, frame_length: float = 25.0, frame_shift: float = 10.0,
                 dither: float = 0.0, cmn: bool = True,
                 window_type: Literal["hamming", "hanning", "povey", "rectangular", "blackman"] = "hamming",
                 specaugment: SpecAugmentConfig | dict[str, int] | None = None) -> None:
        super().__init__(specaugment)
        self.num_features = num_mel_bins
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.window = int(SAMPLE_RATE * frame_length / 1000)
        self.shift = int(SAMPLE_RATE * frame_shift / 1000)
        self.dither = dither
        self.cmn = cmn
        self.window_type = window_type

    def frames(self, num_samples: int) -> int:
        return 1 + (max(num_samples, self.window) - self.window) // self.shift

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return 1 + torch.div(lengths.clamp(min=self.window) - self.window, self.shift, rounding_mode="floor")

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        frame_lengths = self.frame_lengths(lengths)
        out = wave.new_zeros(wave.shape[0], self.num_features, self.frames(wave.shape[-1]))
        for row, n in enumerate(lengths.tolist()):
            signal = F.pad(wave[row, :n], (0, max(0, self.window - n))) * 32768.0
            feats = kaldi.fbank(signal.unsqueeze(0), num_mel_bins=self.num_features,
                                frame_length=self.frame_length, frame_shift=self.frame_shift,
                                dither=self.dither if self.training else 0.0, energy_floor=0.0,
                                sample_frequency=SAMPLE_RATE, window_type=self.window_type)
            if self.cmn:
                feats = feats - feats.mean(0, keepdim=True)
            out[row, :, : feats.shape[0]] = feats.T
        return out, frame_lengths
