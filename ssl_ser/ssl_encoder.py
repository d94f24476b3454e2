"""A frozen self-supervised speech encoder as a front-end: wav2vec 2.0, HuBERT or WavLM from
weights on disk.

EmoBox's anchors (RAVDESS, 8 classes: WavLM-base 0.62 UA, HuBERT-large 0.70, WavLM-large 0.72)
are such encoders, frozen, with a small classifier on the mean of one layer's frames. This
front-end gives ssl-ser the same base::

    frontend: {name: ssl_encoder, arch: wavlm_base, weights: /models/wavlm_base.pth, layer: 7}

- ``arch`` names a torchaudio builder (:data:`ARCHS`); ``weights`` is that architecture's
  torchaudio state dict, as ``torchaudio.pipelines.WAVLM_BASE.get_model().state_dict()``
  returns it (the ``.pth`` files torchaudio publishes, e.g. ``wavlm_base.pth``, are exactly that;
  a Hugging Face checkpoint converts with ``torchaudio.models.wav2vec2.utils.import_huggingface_model``).
  **Nothing is downloaded**: a missing file is one error line naming it, given when the job
  loads (:meth:`SSLEncoder.check_files`), before ``ssl-ser cv`` splits a shard.
- ``layer``: the transformer layer whose output is used (1-based), or ``null`` for the mean of
  all layers' outputs (a parameter-free stand-in for SUPERB's learned layer weights).
- ``pooling``: ``mean`` (EmoBox's utterance-level feature), ``mean_std``, both as a one-frame map
  ``[B, D, 1]`` like the ``functionals`` front-end (so ``frontend.speaker_norm`` standardises
  each dimension per speaker and ``data.feature_cache`` holds one vector per utterance), or
  ``frames`` (``[B, D, T']`` at the encoder's 20-ms frame rate, for a frame-level model).
- ``normalize``: zero-mean, unit-variance waveforms, as the large models were trained (the
  default follows torchaudio's bundles: on for ``*_large_lv60k``, ``xlsr``, ``hubert_large``,
  ``hubert_xlarge`` and ``wavlm_large``).

Why one utterance at a time: the base models' first convolution is normalised over time
(GroupNorm), so a zero-padded row would not give the features it gives alone. Why a memo: the
encoder is frozen and deterministic, so each distinct waveform is encoded once per process
(validation every epoch, the training cache and test then cost one pass each, up to
:data:`MEMO_BYTES` of outputs); ``cache_dir`` keeps the outputs on disk as well, so the folds of
``ssl-ser cv`` and later runs share them.
The encoder always stays in eval mode (no dropout) and its parameters are not trained.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchaudio.models as tam
from torch import Tensor

from ssl_ser.config import ConfigError
from ssl_ser.errors import SslSerError
from ssl_ser.features import FRONTENDS, Frontend

#: torchaudio builders by name; each makes the architecture of the torchaudio bundle named in
#: capitals (``wavlm_base``: ``WAVLM_BASE`` and ``WAVLM_BASE_PLUS``).
ARCHS: dict[str, Callable[[], tam.Wav2Vec2Model]] = {
    "wav2vec2_base": tam.wav2vec2_base,
    "wav2vec2_large": tam.wav2vec2_large,
    "wav2vec2_large_lv60k": tam.wav2vec2_large_lv60k,
    "wav2vec2_xlsr_300m": tam.wav2vec2_xlsr_300m,
    "hubert_base": tam.hubert_base,
    "hubert_large": tam.hubert_large,
    "hubert_xlarge": tam.hubert_xlarge,
    "wavlm_base": tam.wavlm_base,
    "wavlm_large": tam.wavlm_large,
}

#: Architectures trained on normalised waveforms (torchaudio's bundles' ``_normalize_waveform``).
NORMALIZED = frozenset({"wav2vec2_large_lv60k", "wav2vec2_xlsr_300m", "hubert_large", "hubert_xlarge",
                        "wavlm_large"})


#: What the in-process memo may hold: every pooled vector of a corpus fits many times over;
#: frame-level maps past it are encoded again, or read from ``cache_dir``.
MEMO_BYTES = 2 * 2**30


OWNER = "front-end 'ssl_encoder'"
"""How every error line of this module starts."""


class EncoderCacheError(SslSerError, OSError):
    """``cache_dir`` could not be written or read (a full disk, no permission, a broken file)."""


def weights_file(arch: str, weights: str | Path) -> Path:
    """``weights`` as a path, or a one-line :class:`ConfigError` when no such file exists."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"{OWNER}: weights file {str(path)!r} not found (the torchaudio "
                          f"state dict of {arch}, e.g. torchaudio.pipelines.{arch.upper()}'s file; "
                          f"nothing is downloaded)")
    return path


def load_encoder(arch: str, weights: str | Path) -> tam.Wav2Vec2Model:
    """``arch``'s model with the state dict at ``weights``, frozen, in eval mode; one-line
    :class:`ConfigError` for an unknown architecture, a missing, unreadable or mismatched file."""
    if arch not in ARCHS:
        raise ConfigError(f"{OWNER}: unknown arch {arch!r}; choose one of {', '.join(sorted(ARCHS))}")
    path = weights_file(arch, weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which and why, in one line
        raise ConfigError(f"{OWNER}: cannot read weights {str(path)!r}: {type(err).__name__}: "
                          f"{str(err).splitlines()[0] if str(err) else ''}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{OWNER}: {str(path)!r} holds a {type(state).__name__}, not a state dict")
    model = ARCHS[arch]()
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{len(keys)} {what} (first {keys[0]!r})" for what, keys in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if keys]
        raise ConfigError(f"{OWNER}: {str(path)!r} is not a {arch} state dict: " + ", ".join(parts)
                          + " keys")
    model.load_state_dict(state)
    model.requires_grad_(False)
    return model.eval()


def conv_frames(model: tam.Wav2Vec2Model, num_samples: int) -> int:
    """Frames the encoder's convolutional feature extractor makes of ``num_samples`` samples."""
    n = num_samples
    for layer in model.feature_extractor.conv_layers:
        conv = layer.conv
        n = (n - conv.kernel_size[0]) // conv.stride[0] + 1
    return max(n, 0)


@FRONTENDS.register("ssl_encoder")
class SSLEncoder(Frontend):
    """A frozen pretrained encoder's layer, pooled per utterance or frame-level (module docstring)."""

    @classmethod
    def check_files(cls, options: Mapping[str, Any]) -> None:
        weights_file(str(options.get("arch")), options["weights"])

    def __init__(self, arch: str, weights: str, layer: int | None = None,
                 pooling: Literal["mean", "mean_std", "frames"] = "mean", normalize: bool | None = None,
                 cache_dir: str | None = None) -> None:
        super().__init__()
        self.encoder = load_encoder(arch, weights)
        layers = len(self.encoder.encoder.transformer.layers)
        if layer is not None and not 1 <= layer <= layers:
            raise ConfigError(f"{OWNER}: layer must lie in [1, {layers}] ({arch}'s transformer "
                              f"layers) or be null for their mean, got {layer}")
        self.layer = layer
        self.pooling = pooling
        self.normalize = arch in NORMALIZED if normalize is None else normalize
        self.describes_utterance = pooling != "frames"  # type: ignore[misc]  # per instance
        dim = self.encoder.encoder.transformer.layers[0].final_layer_norm.normalized_shape[0]
        self.num_features = dim * (2 if pooling == "mean_std" else 1)
        self.min_samples = next(n for n in range(1, 10**5) if conv_frames(self.encoder, n) >= 1)
        self._memo: dict[str, Tensor] = {}
        self._memo_bytes = 0
        self.cache_dir: Path | None = None
        if cache_dir is not None:
            # outputs of other weights or settings must not mix: one subdirectory per setting
            # keyed by the weights' bytes (a second or two for a large model), not their path
            with open(weights, "rb") as f:
                weights_sha = hashlib.file_digest(f, "sha1").hexdigest()
            digest = hashlib.sha1(f"{arch}|{weights_sha}|{layer}|{pooling}|{self.normalize}".encode())
            self.cache_dir = Path(cache_dir).expanduser() / f"{arch}-{digest.hexdigest()[:12]}"

    def train(self, mode: bool = True) -> SSLEncoder:
        super().train(mode)
        self.encoder.eval()  # frozen: never dropout or layer drop
        return self

    def frames(self, num_samples: int) -> int:
        return 1 if self.pooling != "frames" else max(1, conv_frames(self.encoder, num_samples))

    def compute(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        rows = [self._encode(wave[i, : int(n)]) for i, n in enumerate(lengths.tolist())]
        frames = torch.tensor([r.shape[-1] for r in rows], dtype=torch.int64, device=wave.device)
        out = wave.new_zeros(len(rows), self.num_features, int(frames.max()) if rows else 1)
        for i, r in enumerate(rows):
            out[i, :, : r.shape[-1]] = r.to(out.device)
        return out, frames

    @torch.no_grad()
    def _encode(self, row: Tensor) -> Tensor:
        """``[D', T']`` features of one utterance's samples: memo, then disk, then the encoder."""
        key = hashlib.sha1(row.detach().float().cpu().numpy().tobytes()).hexdigest()
        if key in self._memo:
            return self._memo[key]
        out = self._read(key)
        if out is None:
            out = self._run(row).cpu()
            self._write(key, out)
        if self._memo_bytes + out.nbytes <= MEMO_BYTES:
            self._memo[key] = out
            self._memo_bytes += out.nbytes
        return out

    def _run(self, row: Tensor) -> Tensor:
        if row.numel() < self.min_samples:  # shorter than one encoder frame: zero-pad to one
            row = F.pad(row, (0, self.min_samples - row.numel()))
        x = row.float()[None]
        if self.normalize:
            x = F.layer_norm(x, x.shape)
        layers, _ = self.encoder.extract_features(x, num_layers=self.layer)
        h = layers[-1][0] if self.layer is not None else torch.stack(layers).mean(0)[0]  # [T', D]
        if self.pooling == "frames":
            return h.T.contiguous()
        pooled = [h.mean(0)] + ([h.std(0, unbiased=False)] if self.pooling == "mean_std" else [])
        return torch.cat(pooled)[:, None]

    def _path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / key[:2] / f"{key}.pt"

    def _read(self, key: str) -> Tensor | None:
        if self.cache_dir is None or not self._path(key).is_file():
            return None
        try:
            out = torch.load(self._path(key), map_location="cpu", weights_only=True)
        except Exception as err:
            raise EncoderCacheError(f"{OWNER}: cannot read cached features {self._path(key)} "
                                    f"({type(err).__name__}); delete the file to recompute it") from None
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != self.num_features:
            raise EncoderCacheError(f"{OWNER}: cached features {self._path(key)} are not "
                                    f"[{self.num_features}, frames]; delete the file to recompute it")
        return out

    def _write(self, key: str, out: Tensor) -> None:
        if self.cache_dir is None:
            return
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        buffer = io.BytesIO()
        torch.save(out.clone(), buffer)
        try:  # whole files only: another worker, or a rerun, may read it at any time
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, path)
        except OSError as err:
            with contextlib.suppress(OSError):  # nothing half-written stays behind
                tmp.unlink(missing_ok=True)
            raise EncoderCacheError(f"{OWNER}: cannot write cached features to {path.parent}: "
                                    f"{err.strerror or err}") from None
