"""The default expert: a U-Net decoder on a timm ``features_only`` encoder.

The encoder (``efficientnet_lite0`` by default) reads the one-channel L image; the decoder
sizes itself from the encoder's stage channels, upsamples each stage to its skip's exact
size (odd sizes work), and stops at ``output_stride`` (2 by default): chroma is smooth, so
predicting it at half resolution costs little quality and saves most of the decoder's time.

With ``hints`` the encoder reads four planes instead of one: L and the hint planes of
experts/hints.py (a, b, mask). The hint planes reach the network through its first
convolution only; the U-Net's skips carry them to full resolution, as in Zhang et al. 2017.

The head regresses ab / AB_SCALE directly (tanh). A distribution head over a grid of ab
bins was tried against the plain head with an output gain and lost at every level of
colour (MODELS.md, "A distribution head"); files that name ``ab_bins=0`` still load. A branch
that saw the whole photo (``global_context``, Iizuka et al.'s fusion layer) did not move the
general expert either (MODELS.md, "A global-context branch"): it is no longer built, and a file
that asks for it is refused in one line that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from torch.nn import functional as F

from colorize.experts.architectures import create_timm_model, register_architecture
from colorize.experts.hints import HINT_PLANES

if TYPE_CHECKING:
    from timm.models import FeatureInfo


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
        hints: bool = False,
    ):
        super().__init__()
        self.encoder = create_timm_model(encoder, features_only=True, in_chans=1 + HINT_PLANES * hints)
        # A features_only timm model; nn.Module's attribute lookup alone would type it Tensor | Module.
        feature_info = cast("FeatureInfo", self.encoder.feature_info)
        reductions = feature_info.reduction()
        channels = feature_info.channels()
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
        self.head = nn.Conv2d(cin, 2, 3, padding=1)
        self.encoder_frozen = False

    def freeze_encoder(self) -> None:
        """Train the decoder alone from now on: the encoder's weights get no gradient and its batch
        statistics stay as they are (in training mode too), so what it has learned of scenes is
        kept whole, and a step costs half (benchmarks/training_speed.py)."""
        self.encoder_frozen = True
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> "LiteUNet":
        super().train(mode)
        if self.encoder_frozen:
            self.encoder.eval()
        return self

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encoder(inputs))

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """ab from the encoder's features, every stage as the encoder returns them (a frozen
        encoder's can be computed once and kept: benchmarks/training_speed.py)."""
        features = [features[i] for i in reversed(self.used_stages)]
        x = features[0]
        for stage, skip in zip(self.decoder, features[1:]):
            x = stage(x, skip)
        return torch.tanh(self.head(x))


@register_architecture
def unet_lite(
    encoder: str = "efficientnet_lite0",
    decoder_channels: tuple[int, ...] = (96, 64, 40, 24),
    output_stride: int = 2,
    ab_bins: int = 0,
    rebalance: float = 0.0,
    global_context: bool = False,
    hints: bool = False,
) -> nn.Module:
    # colorize 0.1.0 wrote ab_bins (0 for the regression head) and rebalance into its files; later
    # releases wrote global_context into the files trained with the retired branch.
    if ab_bins:
        raise ValueError(
            f"ab_bins={ab_bins}: the ab-bin head is no longer built (it lost to the output gain, see MODELS.md)"
        )
    if global_context:
        raise ValueError(
            "global_context: the global-context branch was retired (it did not beat the expert without it, see "
            "MODELS.md); colorize no longer builds or runs it"
        )
    return LiteUNet(encoder, tuple(decoder_channels), output_stride, bool(hints))
