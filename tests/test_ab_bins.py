"""The ab-bin head: soft targets, annealed-mean decoding, and its loss."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colorize.experts.ab_bins import (
    bin_centres,
    bin_index,
    bin_loss,
    log_prior,
    rarity_weights,
    rebalanced_mean,
    soft_targets,
)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 20), seed=st.integers(0, 2**31 - 1))
def test_soft_targets_are_a_distribution_whose_mean_is_the_pixel(n, seed):
    generator = torch.Generator().manual_seed(seed)
    inner = 1 - 1 / n  # the outermost centres; beyond them the target is clamped
    ab = (torch.rand(2, 2, 3, 5, generator=generator) * 2 - 1) * inner
    targets = soft_targets(ab, n)
    assert targets.shape == (2, n * n, 3, 5)
    assert (targets >= 0).all()
    assert torch.allclose(targets.sum(dim=1), torch.ones(2, 3, 5), atol=1e-5)
    assert ((targets > 0).sum(dim=1) <= 4).all()
    mean = torch.einsum("bqhw,qc->bchw", targets, bin_centres(n))
    assert torch.allclose(mean, ab, atol=1e-5)


def test_out_of_grid_chroma_is_clamped_to_the_edge():
    n = 8
    targets = soft_targets(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1), n)
    centre = bin_centres(n)[targets[0, :, 0, 0].argmax()]
    assert targets.max() == pytest.approx(1.0)
    assert centre.tolist() == pytest.approx([1 - 1 / n, -(1 - 1 / n)])


def test_rebalancing_moves_the_mean_from_the_common_colour_to_the_rare_one():
    n = 8
    centres = bin_centres(n)
    # A pixel the network finds 60 % likely gray and 40 % likely a saturated colour, where gray
    # is ten times as common as that colour in the training photos.
    gray, vivid = 4 * n + 4, 7 * n + 1  # cells (a 4, b 4) and (a 7, b 1)
    probabilities = torch.full((n * n,), 1e-9)
    probabilities[gray], probabilities[vivid] = 0.6, 0.4
    logits = torch.log(probabilities).view(1, n * n, 1, 1)
    histogram = torch.ones(n * n)
    histogram[gray], histogram[vivid] = 100.0, 10.0
    prior = log_prior(histogram)

    plain = rebalanced_mean(logits, centres, prior, 0.0).view(2)
    assert torch.allclose(plain, 0.6 * centres[gray] + 0.4 * centres[vivid], atol=1e-5)
    distances = [
        float((rebalanced_mean(logits, centres, prior, s).view(2) - centres[vivid]).norm())
        for s in (0.0, 0.5, 1.0, 2.0)
    ]
    assert distances == sorted(distances, reverse=True) and distances[-1] < 0.5 * distances[0]


def test_prior_is_a_distribution_with_a_floor():
    histogram = torch.zeros(16)
    histogram[3] = 50.0
    prior = log_prior(histogram).exp()
    assert prior.sum() == pytest.approx(1.0)
    assert prior.min() == pytest.approx(0.5 / 16) and prior[3] == pytest.approx(0.5 + 0.5 / 16)


def test_loss_is_lowest_for_the_true_distribution():
    n = 6
    ab = (torch.rand(1, 2, 8, 8) * 2 - 1) * 0.8
    targets = soft_targets(ab, n)
    right = bin_loss(torch.log(targets.clamp_min(1e-6)), ab)
    uniform = bin_loss(torch.zeros_like(targets), ab)
    shuffled = bin_loss(torch.log(targets.roll(1, dims=-1).clamp_min(1e-6)), ab)
    assert right < uniform and right < shuffled


def test_loss_resizes_chroma_to_the_logits_grid():
    ab = torch.zeros(1, 2, 16, 16)
    ab[:, :, :8] = 0.5  # top half one colour, bottom half neutral
    logits = torch.zeros(1, 16, 8, 8, requires_grad=True)
    bin_loss(logits, ab).backward()  # 16x16 chroma against an 8x8 grid of logits
    assert logits.grad.shape == logits.shape


def test_a_grid_needs_two_bins():
    with pytest.raises(ValueError):
        bin_centres(1)


def test_bin_index_names_the_cell_each_colour_falls_in():
    n = 6
    centres = bin_centres(n)
    # Every cell's centre falls in that cell, and colours past the grid's edge in the edge cells.
    assert bin_index(centres.T.reshape(1, 2, n * n, 1), n).flatten().tolist() == list(range(n * n))
    beyond = torch.tensor([[-1.5, 1.5], [1.0, -1.0]]).T.reshape(1, 2, 2, 1)
    assert bin_index(beyond, n).flatten().tolist() == [0 * n + (n - 1), (n - 1) * n + 0]


def test_rarity_weights_count_rare_colours_more_and_the_average_pixel_as_one():
    histogram = torch.tensor([70.0, 20.0, 10.0, 0.0])
    share = histogram / histogram.sum()
    for strength in (0.25, 0.5, 1.0):
        weights = rarity_weights(histogram, strength)
        assert float((share * weights).sum()) == pytest.approx(1.0)
        assert weights.tolist() == sorted(weights.tolist()), "the rarer the cell, the more it weighs"
        assert weights[-1] < 100 * weights[0], "a colour never seen is bounded, not infinite"
    assert torch.allclose(rarity_weights(histogram, 0.0), torch.ones(4))
