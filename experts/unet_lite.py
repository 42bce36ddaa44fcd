"""The default expert: a U-Net decoder on a timm ``features_only`` encoder.

The encoder (``efficientnet_lite0`` by default) reads the one-channel L image; the decoder
sizes itself from the encoder's stage channels, upsamples each stage to its skip's exact
size (odd sizes work), and stops at ``output_stride`` (2 by default): chroma is smooth, so
predicting it at half resolution costs little quality and saves most of the decoder's time.

The head either regresses ab directly (``ab_bins=0``) or predicts a distribution over an
``ab_bins x ab_bins`` grid and decodes it with the mean rebalanced against the training
colours' prior at ``rebalance`` (see ``experts.ab_bins``); either way ``forward`` returns
ab / AB_SCALE. The prior is a buffer saved with the weights.

The bin head is built on the regression head rather than beside it: its logits are a
Gaussian of width ``sigma`` around the regression output z, ``(c . z - |c|^2 / 2) / sigma^2``
(linear in z, so still one convolution's worth of work), plus a 1x1 convolution that starts
at zero. Fine-tuned from a regression expert, it therefore starts out predicting what that
expert predicted, and training only has to learn where the colour is uncertain and how.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from colorize.experts.ab_bins import bin_centres, rebalanced_mean
from colorize.experts.architectures import create_timm_model, register_architecture


def _conv_bn_act(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _DecoderStage(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.fuse = nn.Sequential(_conv_bn_act(cin + cskip, cout), _conv_bn_act(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat((x, skip), dim=1))


class LiteUNet(nn.Module):
    def __init__(
        self,
        encoder: str,
        decoder_channels: tuple[int, ...],
        output_stride: int,
        ab_bins: int = 0,
        rebalance: float = 0.0,
    ):
        super().__init__()
        if rebalance < 0:
            raise ValueError(f"rebalance must not be negative, got {rebalance}")
        self.encoder = create_timm_model(encoder, features_only=True, in_chans=1)
        reductions = self.encoder.feature_info.reduction()
        channels = self.encoder.feature_info.channels()
        if output_stride not in reductions:
            raise ValueError(f"output_stride must be one of the encoder's reductions {reductions}")
        # Stages at or above output_stride feed the decoder, deepest first.
        used = [i for i, r in enumerate(reductions) if r >= output_stride]
        self.used_stages = used
        skips = [channels[i] for i in reversed(used)]
        if len(decoder_channels) != len(skips) - 1:
            raise ValueError(f"decoder_channels needs {len(skips) - 1} entries for this encoder")
        stages, cin = [], skips[0]
        for cskip, cout in zip(skips[1:], decoder_channels):
            stages.append(_DecoderStage(cin, cskip, cout))
            cin = cout
        self.decoder = nn.ModuleList(stages)
        self.ab_bins, self.rebalance = ab_bins, rebalance
        self.head = nn.Conv2d(cin, 2, 3, padding=1)
        if ab_bins:
            self.bin_residual = nn.Conv2d(cin, ab_bins * ab_bins, 1)
            nn.init.zeros_(self.bin_residual.weight)
            nn.init.zeros_(self.bin_residual.bias)
            # Starting width: one bin, so the first distributions are as sharp as the grid allows.
            self.log_sigma = nn.Parameter(torch.tensor(math.log(2 / ab_bins)))
            # Not persistent: the grid follows from ab_bins, so files need not carry it.
            self.register_buffer("centres", bin_centres(ab_bins), persistent=False)
            # Log share of each bin among training pixels; uniform until training measures it.
            self.register_buffer("log_prior", torch.full((ab_bins * ab_bins,), -2 * math.log(ab_bins)))

    def head_output(self, lightness: torch.Tensor) -> torch.Tensor:
        """The head's raw output: 2 pre-tanh channels, or one logit per ab bin."""
        features = self.encoder(lightness)
        features = [features[i] for i in reversed(self.used_stages)]
        x = features[0]
        for stage, skip in zip(self.decoder, features[1:]):
            x = stage(x, skip)
        z = self.head(x)
        if not self.ab_bins:
            return z
        centres = self.centres.to(z.dtype)
        gaussian = torch.einsum("bchw,qc->bqhw", z, centres) - 0.5 * (centres**2).sum(dim=1).view(1, -1, 1, 1)
        return gaussian * torch.exp(-2 * self.log_sigma) + self.bin_residual(x)

    def decode(self, output: torch.Tensor, rebalance: float | None = None) -> torch.Tensor:
        """Head output -> ab / AB_SCALE; ``rebalance`` overrides the model's own (bins only)."""
        if not self.ab_bins:
            return torch.tanh(output)
        strength = self.rebalance if rebalance is None else rebalance
        return rebalanced_mean(output, self.centres, self.log_prior, strength)

    def forward(self, lightness: torch.Tensor, raw: bool = False) -> torch.Tensor:
        # raw=True serves training: its loss reads the head directly, through the same
        # forward call a DistributedDataParallel wrapper synchronises.
        output = self.head_output(lightness)
        return output if raw else self.decode(output)


@register_architecture
def unet_lite(
    encoder: str = "efficientnet_lite0",
    decoder_channels: tuple[int, ...] = (96, 64, 40, 24),
    output_stride: int = 2,
    ab_bins: int = 0,
    rebalance: float = 0.0,
) -> nn.Module:
    return LiteUNet(encoder, tuple(decoder_channels), output_stride, ab_bins, rebalance)
