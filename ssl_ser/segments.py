"""Fixed-length windows for segment models (Li et al. 2018, Gao et al. 2021).

A segment model sees fixed-size windows cut from each utterance; its utterance-level score
is the mean of its segment scores. Cutting is done on the device, batched, on waveforms.
"""

from __future__ import annotations

import torch

from ssl_ser import SAMPLE_RATE


def split(audio: torch.Tensor, lengths: torch.Tensor, seconds: float, hop: float,
          sample_rate: int = SAMPLE_RATE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut ``audio [B, T]`` into windows of ``seconds`` every ``hop`` seconds (:func:`windows`
    with the sizes in samples)."""
    size = int(round(seconds * sample_rate))
    step = int(round(hop * sample_rate))
    if size <= 0 or step <= 0:
        raise ValueError(f"segment seconds and hop must be positive, got {seconds}, {hop}")
    return windows(audio, lengths, size, step)


def windows(x: torch.Tensor, lengths: torch.Tensor, size: int,
            step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut ``x [B, ..., T]`` (waveforms, or features with frames last) along its last axis into
    windows of ``size`` every ``step`` steps; ``lengths [B]``: the real steps of each row.

    Every row gives at least one window (a short one is zero-padded; its length says how much
    is real). Returns ``(windows [S, ..., size], window lengths [S], owner [S])`` where
    ``owner`` maps each window to its row in the batch.
    """
    if size <= 0 or step <= 0:
        raise ValueError(f"window size and step must be positive, got {size}, {step}")
    pieces, seg_lengths, owners = [], [], []
    for row, length in enumerate(lengths.tolist()):
        count = 1 if length <= size else 1 + (length - size) // step
        for i in range(count):
            start = i * step
            piece = x[row, ..., start:start + min(size, length - start)]
            pieces.append(torch.nn.functional.pad(piece, (0, size - piece.shape[-1])))
            seg_lengths.append(min(size, length - start))
            owners.append(row)
    device = x.device
    return (torch.stack(pieces), torch.tensor(seg_lengths, device=device),
            torch.tensor(owners, device=device, dtype=torch.long))


def fixed_windows(x: torch.Tensor, lengths: torch.Tensor, size: int,
                  step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`windows` at a shape that depends on ``x``'s shape only, for export: every row is
    cut into ``1 + T // step`` windows (``x`` padded by ``size`` zeros), ``weights [B, n]`` is 1
    for the windows :func:`windows` gives that row and 0 for the rest (their lengths are set to
    ``size`` so that a model sees no empty window). Returns ``(windows [B * n, ..., size],
    window lengths [B * n], weights [B, n])``."""
    cut = torch.nn.functional.pad(x, (0, size)).unfold(-1, size, step).movedim(-2, 1)  # [B, n, ..., size]
    starts = torch.arange(cut.shape[1], device=x.device) * step
    left = lengths[:, None] - starts[None, :]
    kept = (starts == 0)[None, :] | (left >= size)
    seg_lengths = torch.where(kept, left.clamp(min=1, max=size), torch.full_like(left, size))
    return cut.flatten(0, 1), seg_lengths.flatten(), kept.to(x.dtype)


def pool(scores: torch.Tensor, owner: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Mean of segment scores ``[S, ...]`` per owner row -> ``[num_rows, ...]``."""
    out = torch.zeros((num_rows, *scores.shape[1:]), dtype=scores.dtype, device=scores.device)
    out.index_add_(0, owner, scores)
    counts = torch.bincount(owner, minlength=num_rows).clamp(min=1).to(scores.dtype)
    return out / counts.view(-1, *([1] * (scores.dim() - 1)))
