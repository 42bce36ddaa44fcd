"""How an expert's network is fed and how its output becomes chroma: the one definition.

Training scores each candidate output gain on validation photos with this same object, and
writes the chosen one into the weights file; inference reads it back from there. Neither
re-implements the other's arithmetic, so what validation chose is what ships. The arithmetic
takes numpy arrays (inference, onnxruntime) and torch tensors (training) alike.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, cast

import numpy as np

AB_SCALE = 110.0  # |a|, |b| of sRGB colours stay below this; networks predict ab / AB_SCALE


@dataclass(frozen=True)
class Normalization:
    # The network reads (L - l_center) / l_scale: L in [0, 100] becomes [-1, 1].
    l_center: float = 50.0
    l_scale: float = 50.0
    # Its output is ab / ab_scale, in [-1, 1] through a tanh.
    ab_scale: float = AB_SCALE
    # A fixed per-channel boost after the network: L1 regression is muted (opposite guesses
    # cancel), and a gain chosen on validation photos buys colour within a ΔE budget. The
    # original paper used a x1.6, b x2.
    ab_gain: tuple[float, float] = (1.0, 1.0)
    # A constant added to a and b after the gain, in LAB units: a calibration chosen on photos
    # of sources the network never trained on, whose colours sit elsewhere on average than the
    # training photos' (MODELS.md: a red cast on new sources). 0 in files that predate it.
    ab_shift: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        numbers = (self.l_center, self.l_scale, self.ab_scale, *self.ab_gain, *self.ab_shift)
        if (
            len(self.ab_gain) != 2
            or len(self.ab_shift) != 2
            or not all(math.isfinite(float(x)) for x in numbers)
            or self.l_scale == 0
        ):
            raise ValueError(
                f"normalization out of range (NaN, infinite, 0 scale, or not two gains and two shifts): {self}"
            )

    @classmethod
    def from_metadata(cls, values: Mapping[str, Any]) -> "Normalization":
        # colorize 0.1.0 also wrote a chroma curve's exponent (always 0 in files it shipped:
        # the curve traded PSNR for ΔE, MODELS.md) and its reference chroma.
        if float(values.get("chroma_exponent", 0.0)) != 0.0:
            raise ValueError("a chroma curve (chroma_exponent above 0) is no longer applied; retrain or re-score")
        gain = values.get("ab_gain", (1.0, 1.0))
        shift = values.get("ab_shift", (0.0, 0.0))
        # A file may list any number of values: __post_init__ refuses all but two.
        return cls(
            l_center=float(values.get("l_center", 50.0)),
            l_scale=float(values.get("l_scale", 50.0)),
            ab_scale=float(values.get("ab_scale", AB_SCALE)),
            ab_gain=cast("tuple[float, float]", tuple(float(g) for g in gain)),
            ab_shift=cast("tuple[float, float]", tuple(float(s) for s in shift)),
        )

    def to_metadata(self) -> dict[str, Any]:
        return {**asdict(self), "ab_gain": list(self.ab_gain), "ab_shift": list(self.ab_shift)}

    def with_gain(self, gain: float) -> "Normalization":
        return replace(self, ab_gain=(float(gain), float(gain)))

    def uncalibrated(self) -> "Normalization":
        """The network's own decoding, gain 1 and no shift: what training fits, and what a
        fine-tune starts from (a calibration belongs to the weights it was chosen for)."""
        return replace(self, ab_gain=(1.0, 1.0), ab_shift=(0.0, 0.0))

    def network_input(self, lightness, hints=None):
        """L in [0, 100] (B, 1, h, w) -> what the network reads; with ``hints`` (B, 3, h, w: a and b
        in LAB units, mask; experts/hints.py) for a hint-aware network, those planes after it."""
        normalised = (lightness - self.l_center) / self.l_scale
        if hints is None:
            return normalised
        # A hint's ab in the head's own scale: where the mask is 1 it says what the output should be.
        return _planes(normalised, hints[:, :2] / self.ab_scale, hints[:, 2:])

    def chroma(self, output):
        """The network's output (B, 2, h, w) -> ab in LAB units, at the network's resolution."""
        (gain_a, gain_b), (shift_a, shift_b) = self.ab_gain, self.ab_shift
        return _planes(
            output[:, :1] * (self.ab_scale * gain_a) + shift_a, output[:, 1:2] * (self.ab_scale * gain_b) + shift_b
        )


def _planes(*planes):
    """Planes (B, C, h, w) joined along C, numpy arrays or torch tensors as given."""
    if isinstance(planes[0], np.ndarray):
        return np.concatenate(planes, axis=1)
    import torch

    return torch.cat(planes, dim=1)
