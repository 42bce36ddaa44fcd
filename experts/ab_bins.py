"""Chroma as a distribution over a grid of ab bins, and the annealed mean that decodes it.

Regression to one ab value per pixel (L1 or MSE) learns the middle of every colour a pixel
could have, which for most objects is a muted brown. A head that predicts a probability for
each cell of an ``n x n`` grid over normalised ab keeps every mode. Its plain mean is as
muted as regression, and its most likely cell is often gray too: near-neutral pixels
dominate every photo collection, so "gray" is the safest single guess. The decoder
therefore divides out part of that prior before taking the mean,
``p'(c) ~ p(c) / prior(c) ** strength``, the test-time form of Zhang et al.'s class
rebalancing: strength 0 is the plain mean, larger strengths favour the rarer, more
saturated colours the network still finds likely. The strength is the one knob between
dull-but-safe and vivid-but-sometimes-wrong; training chooses it on validation photos (see
``pipelines.train_expert``).

All values here are normalised ab (ab / AB_SCALE), in [-1, 1].
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def bin_centres(n: int) -> torch.Tensor:
    """(n*n, 2) centres of an n x n grid of equal cells tiling [-1, 1]^2; index = a_index * n + b_index."""
    if n < 2:
        raise ValueError(f"an ab grid needs at least 2 bins per axis, got {n}")
    axis = torch.linspace(-1 + 1 / n, 1 - 1 / n, n)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((a.reshape(-1), b.reshape(-1)), dim=1)


def soft_targets(ab: torch.Tensor, n: int) -> torch.Tensor:
    """(B, 2, h, w) normalised ab -> (B, n*n, h, w) bilinear weights over the 4 nearest centres.

    The weights' mean is the pixel's ab exactly (inside the grid's outer centres; beyond them
    it is clamped to the edge), so the targets teach the distribution without blurring it.
    """
    step = 2 / n
    position = ((ab + 1 - 1 / n) / step).clamp(0, n - 1)  # in units of bins, 0 = first centre
    low = position.floor().clamp(max=n - 2)
    frac = position - low
    low = low.long()
    batch, _, height, width = ab.shape
    targets = ab.new_zeros(batch, n * n, height, width)
    for da in (0, 1):
        weight_a = frac[:, 0] if da else 1 - frac[:, 0]
        for db in (0, 1):
            weight_b = frac[:, 1] if db else 1 - frac[:, 1]
            index = (low[:, 0] + da) * n + (low[:, 1] + db)
            targets.scatter_add_(1, index.unsqueeze(1), (weight_a * weight_b).unsqueeze(1))
    return targets


def rebalanced_mean(
    logits: torch.Tensor, centres: torch.Tensor, log_prior: torch.Tensor, strength: float
) -> torch.Tensor:
    """(B, n*n, h, w) logits -> (B, 2, h, w) normalised ab: the mean of p / prior ** strength."""
    if strength:
        logits = logits - strength * log_prior.to(logits.dtype).view(1, -1, 1, 1)
    probabilities = F.softmax(logits, dim=1)
    return torch.einsum("bqhw,qc->bchw", probabilities, centres.to(probabilities.dtype))


def log_prior(histogram: torch.Tensor) -> torch.Tensor:
    """Log of the bins' share of training pixels, half mixed with uniform.

    The uniform half bounds the correction: a bin no training pixel had (out of gamut, say)
    gets at most (1 + n*n * largest share) times the weight of the commonest, not infinity.
    """
    share = histogram / histogram.sum().clamp_min(1e-12)
    return torch.log(0.5 * share + 0.5 / share.numel())


def bin_index(ab: torch.Tensor, n: int) -> torch.Tensor:
    """(B, 2, h, w) normalised ab -> (B, 1, h, w) index of the n x n grid cell each pixel falls in."""
    cell = ((ab + 1) * (n / 2)).floor().clamp(0, n - 1).long()
    return cell[:, :1] * n + cell[:, 1:]


def rarity_weights(histogram: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-cell loss weights ``prior ** -strength``, scaled so the average training pixel weighs 1.

    The training-time form of the rebalancing above, for a regression head: an L1 loss whose
    pixels are weighted so moves its answer from the plain median of the colours a pixel could
    have towards the rarer, more saturated ones. The prior's uniform half bounds every weight.
    """
    share = histogram / histogram.sum().clamp_min(1e-12)
    weights = torch.exp(-strength * log_prior(histogram))
    return weights / (share * weights).sum()


def bin_loss(logits: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against bilinear soft targets; ``ab`` is resized to the logits' grid first."""
    n = int(round(logits.shape[1] ** 0.5))
    if ab.shape[-2:] != logits.shape[-2:]:
        # Area averaging: each output cell's target is the mean chroma of the pixels it covers.
        ab = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
    targets = soft_targets(ab, n)
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
