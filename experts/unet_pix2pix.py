"""The pix2pix generator (Isola et al., CVPR 2017), kept as a size and speed reference.

The classic ``UnetGenerator(num_downs=8, ngf=64)``: eight 4x4 stride-2 convolutions
64-128-256-512-512-512-512-512 (LeakyReLU 0.2, BatchNorm except at both ends), mirrored
transposed convolutions with skip connections (ReLU, BatchNorm), tanh output. Dropout 0.5
follows the three up-steps next to the innermost one, where the reference code has it (the
paper's text counts the innermost up-step among the three; ``num_downs - 5`` of them in
general). Adapted to 1 input channel (L) and 2 outputs (ab); about 54.4 M parameters. It is
the "big U-Net" that colorization write-ups usually quote, timed by ``benchmarks/`` beside
our default expert so the ratio between them is measured.

Eight halvings need a side that is a multiple of 256: other sizes are padded by
reflection up to the next multiple and the prediction cropped back, so any H x W works
(and a 224-pixel work size costs what 256 pixels cost).
"""

from __future__ import annotations

import torch
from torch import nn

from colorize.experts.architectures import CHANNELS, MAX_CHANNELS, Bound, register_architecture


class _Level(nn.Module):
    """One U-Net level: down-step, the levels inside it, up-step; its input is concatenated back."""

    def __init__(self, outer: int, inner: int, submodule: nn.Module | None = None, dropout: bool = False):
        super().__init__()
        innermost = submodule is None
        layers: list[nn.Module] = [
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(outer, inner, 4, stride=2, padding=1, bias=False),
        ]
        if submodule is not None:  # not innermost: pix2pix leaves the 1x1 bottleneck unnormalised
            layers += [nn.BatchNorm2d(inner), submodule]
        layers += [
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(inner if innermost else 2 * inner, outer, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(outer),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As in the reference code, the in-place LeakyReLU also rewrites the skip (x).
        return torch.cat((x, self.model(x)), dim=1)


class Pix2PixUNet(nn.Module):
    def __init__(self, in_channels: int = 1, out_channels: int = 2, ngf: int = 64, num_downs: int = 8):
        super().__init__()
        if num_downs < 5:
            raise ValueError("num_downs must be at least 5 (64-128-256-512 and the innermost level)")
        level = _Level(ngf * 8, ngf * 8)
        for _ in range(num_downs - 5):
            level = _Level(ngf * 8, ngf * 8, level, dropout=True)
        for width in (4, 2, 1):
            level = _Level(ngf * width, ngf * width * 2, level)
        self.down = nn.Conv2d(in_channels, ngf, 4, stride=2, padding=1, bias=False)
        self.levels = level
        self.up = nn.Sequential(
            nn.ReLU(inplace=True), nn.ConvTranspose2d(2 * ngf, out_channels, 4, stride=2, padding=1)
        )
        self.multiple = 2**num_downs

    # Its padding depends on the input's size in ways an ONNX graph of the operators colorize
    # runs cannot compute (core/onnx.py), so its graph is exported for one input size, the work
    # size (experts/onnx_export.py).
    exports_at_one_size = True

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        height, width = (int(side) for side in lightness.shape[-2:])
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            # Reflection needs the pad to be smaller than the side; tiny inputs are replicated.
            reflect = pad_h < height and pad_w < width
            lightness = _padded(lightness, pad_h, pad_w, reflect)
        x = self.up(self.levels(self.down(lightness)))
        return torch.tanh(x[..., :height, :width])


def _padded(image: torch.Tensor, pad_h: int, pad_w: int, reflect: bool) -> torch.Tensor:
    """``image`` padded at the bottom and the right as ``F.pad`` pads it by reflection (or by
    replication), made by gathering rows and columns: the same values, and an ONNX graph of them
    needs no operator colorize leaves out (``F.pad``'s builds its pad widths with ConstantOfShape)."""
    for axis, pad in ((-2, pad_h), (-1, pad_w)):
        side = image.shape[axis]
        beyond = range(side, side + pad)
        index = [*range(side), *((2 * (side - 1) - i) if reflect else side - 1 for i in beyond)]
        image = image.index_select(axis, torch.tensor(index, device=image.device))
    return image


# The innermost levels are 8 x ngf wide; the input is padded to a multiple of 2 ** num_downs,
# and 2 ** 10 is already the largest work size a weights file may name.
@register_architecture(
    bounds={
        "in_channels": CHANNELS,
        "out_channels": CHANNELS,
        "ngf": Bound(1, MAX_CHANNELS // 8),
        "num_downs": Bound(5, 10),
    }
)
def unet_pix2pix(in_channels: int = 1, out_channels: int = 2, ngf: int = 64, num_downs: int = 8) -> nn.Module:
    return Pix2PixUNet(in_channels, out_channels, ngf, num_downs)
