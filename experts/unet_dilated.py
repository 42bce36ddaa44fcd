"""CU-net: a U-Net whose two deepest resolution steps are replaced by dilated convolutions.

From Wang, Chen and Tian's face-colorization work: instead of halving the image two more
times to widen the receptive field, the network stops at a quarter of the input size and
stacks 3x3 convolutions with growing dilation (2, 4, 8, 16 by default) there. High-level
features see most of a 224-pixel work image, yet keep the positions a face's parts need;
the decoder then upsamples twice with skip connections. BatchNorm + ReLU throughout, tanh
output, ab predicted at full input size. The report trained it with an MSE loss.

Widths 32-64-128 by default, the same as ``unet_seed``, so the two differ only in the middle
of the network: about 1.06 M parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from colorize.experts.architectures import CHANNELS, Bound, register_architecture


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    # padding = dilation keeps a 3x3 convolution's output the size of its input at any dilation.
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """Transposed-convolution up-step to the skip's exact size, then two convolutions on both."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.fuse = nn.Sequential(_conv_bn_relu(2 * cout, cout), _conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        # An odd side halves to a rounded-up size. An exported graph keeps the branch its trace
        # took, so there the resize is always in it (to the skip's own size it changes nothing).
        if torch.onnx.is_in_onnx_export() or x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat((x, skip), dim=1))


class DilatedUNet(nn.Module):
    def __init__(self, widths: tuple[int, ...], dilations: tuple[int, ...]):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths needs 3 entries (full, half and quarter resolution), got {len(widths)}")
        if not dilations or min(dilations) < 1:
            raise ValueError(f"dilations must be one or more positive integers, got {list(dilations)}")
        w1, w2, w3 = widths
        self.enc1 = nn.Sequential(_conv_bn_relu(1, w1), _conv_bn_relu(w1, w1))
        self.enc2 = nn.Sequential(_conv_bn_relu(w1, w2, stride=2), _conv_bn_relu(w2, w2))
        self.enc3 = nn.Sequential(_conv_bn_relu(w2, w3, stride=2), _conv_bn_relu(w3, w3))
        self.middle = nn.Sequential(*(_conv_bn_relu(w3, w3, dilation=d) for d in dilations))
        self.dec2 = _Up(w3, w2)
        self.dec1 = _Up(w2, w1)
        self.head = nn.Conv2d(w1, 2, 1)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        s1 = self.enc1(lightness)
        s2 = self.enc2(s1)
        x = self.middle(self.enc3(s2))
        x = self.dec1(self.dec2(x, s2), s1)
        return torch.tanh(self.head(x))


# A convolution pads its input by its dilation on every side: 16 times the deepest default
# still fits a work image, a million would be gigabytes of padding.
_DILATION = Bound(1, 256)


@register_architecture(bounds={"widths": CHANNELS, "dilations": _DILATION})
def unet_dilated(widths: Sequence[int] = (32, 64, 128), dilations: Sequence[int] = (2, 4, 8, 16)) -> nn.Module:
    # Arguments come from a weights file's metadata: lists of any length (DilatedUNet checks them).
    return DilatedUNet(tuple(widths), tuple(dilations))
