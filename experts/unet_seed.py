"""The reference U-Net of the original category-expert paper, kept to reproduce its recipe.

Encoder 32-64-128 channels with residual blocks, two transposed-convolution up steps
with skip connections, tanh output; about 1.0 M parameters. Predicts ab at full input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from colorize.experts.architectures import CHANNELS, COUNT, register_architecture


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SeedUNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), bottleneck_blocks: int = 2):
        super().__init__()
        w1, w2, w3 = widths
        self.enc1 = nn.Sequential(_conv_bn_relu(1, w1), ResidualBlock(w1))
        self.enc2 = nn.Sequential(_conv_bn_relu(w1, w2, stride=2), ResidualBlock(w2))
        self.enc3 = nn.Sequential(
            _conv_bn_relu(w2, w3, stride=2), *[ResidualBlock(w3) for _ in range(bottleneck_blocks)]
        )
        self.up2 = nn.ConvTranspose2d(w3, w2, 2, stride=2)
        self.dec2 = nn.Sequential(_conv_bn_relu(2 * w2, w2), ResidualBlock(w2))
        self.up1 = nn.ConvTranspose2d(w2, w1, 2, stride=2)
        self.dec1 = nn.Sequential(_conv_bn_relu(2 * w1, w1), ResidualBlock(w1))
        self.head = nn.Conv2d(w1, 2, 1)

    @staticmethod
    def _match(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # Odd input sizes leave the upsampled map one pixel short; resize to the skip's size. An
        # exported graph keeps the branch its trace took, so there the resize is always in it (to
        # the skip's own size it changes nothing) and the graph takes any input size.
        if torch.onnx.is_in_onnx_export() or x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return x

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        s1 = self.enc1(lightness)
        s2 = self.enc2(s1)
        x = self.enc3(s2)
        x = self.dec2(torch.cat((self._match(self.up2(x), s2), s2), dim=1))
        x = self.dec1(torch.cat((self._match(self.up1(x), s1), s1), dim=1))
        return torch.tanh(self.head(x))


@register_architecture(bounds={"widths": CHANNELS, "bottleneck_blocks": COUNT})
def unet_seed(widths: Sequence[int] = (32, 64, 128), bottleneck_blocks: int = 2) -> nn.Module:
    # Arguments come from a weights file's metadata: lists, of any length (SeedUNet unpacks three).
    return SeedUNet(tuple(widths), bottleneck_blocks)
