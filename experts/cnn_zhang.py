"""The colorization network of Zhang, Isola and Efros (ECCV 2016), as a regression model.

A plain VGG-style stack of eight blocks, no skip connections. Blocks 1-3 each end in a
stride-2 convolution (input / 8); blocks 4-7 keep that resolution, 5 and 6 with dilation 2
to widen the receptive field without losing it; block 8 upsamples once with a transposed
convolution, so chroma comes out at a quarter of the input size. ReLU after every
convolution and BatchNorm at the end of blocks 1-7, as in the authors' PyTorch port.

The paper's head classifies each pixel into 313 ab bins; like the landscape report, this
regresses ab instead: a 1x1 convolution to 2 channels and tanh.

The paper's channels are 64-128-256-512-512-512-512-256, scaled here by ``width``:
at the default 0.25 (16 ... 128) about 2.0 M parameters, at ``width=1`` about 32.2 M.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from colorize.experts.architectures import MAX_CHANNELS, Bound, register_architecture

# (channels, convolutions, stride of the last one, dilation) of blocks 1-7.
_BLOCKS = (
    (64, 2, 2, 1),
    (128, 2, 2, 1),
    (256, 3, 2, 1),
    (512, 3, 1, 1),
    (512, 3, 1, 2),
    (512, 3, 1, 2),
    (512, 3, 1, 1),
)
_BLOCK8_CHANNELS = 256


def _block(cin: int, cout: int, convs: int, stride: int, dilation: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        last = i == convs - 1
        layers += [
            nn.Conv2d(
                cin if i == 0 else cout,
                cout,
                3,
                stride=stride if last else 1,
                padding=dilation,
                dilation=dilation,
            ),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers, nn.BatchNorm2d(cout))


class ZhangCNN(nn.Module):
    def __init__(self, width: float):
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")

        def scaled(channels: int) -> int:
            return max(1, round(channels * width))

        blocks, cin = [], 1
        for channels, convs, stride, dilation in _BLOCKS:
            blocks.append(_block(cin, scaled(channels), convs, stride, dilation))
            cin = scaled(channels)
        c8 = scaled(_BLOCK8_CHANNELS)
        blocks.append(
            nn.Sequential(
                nn.ConvTranspose2d(cin, c8, 4, stride=2, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c8, c8, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c8, c8, 3, padding=1),
                nn.ReLU(inplace=True),
            )
        )
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(c8, 2, 1)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        height, width = lightness.shape[-2:]
        x = self.head(self.blocks(lightness))
        # Three rounded-up halvings and one doubling overshoot a quarter on sides that are not a
        # multiple of 8 (and exceed the input on sides under 4); resizing to ceil(side / 4) keeps
        # the output a quarter of the input whatever its size.
        # In integers, so that an exported graph computes it from its input's size; and there the
        # resize is always in it (a trace keeps the branch it took; to its own size it changes nothing).
        size = ((height + 3) // 4, (width + 3) // 4)
        if torch.onnx.is_in_onnx_export() or x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return torch.tanh(x)


# width scales the paper's widest block, 512 channels.
@register_architecture(bounds={"width": Bound(0, MAX_CHANNELS / 512)})
def cnn_zhang(width: float = 0.25) -> nn.Module:
    return ZhangCNN(float(width))
