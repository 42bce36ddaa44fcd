"""Architecture registry: a colorization network is a *name* with a factory.

Every factory takes keyword arguments only and returns an ``nn.Module`` mapping
normalised L, shape (B, 1, H, W) in [-1, 1], to ab / AB_SCALE, shape (B, 2, H', W').
H' x W' may be smaller than H x W (chroma is predicted at reduced resolution and
upsampled by the caller). The arguments are stored in each weights file, so a model
rebuilds from its file alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # torch is imported by the architectures themselves, not by naming them
    from torch import nn

# The architectures that come with colorize: each module registers the one of its own name, so
# the command line can offer these names (--arch) without importing torch.
BUILTIN_ARCHITECTURES = ("cnn_zhang", "unet_dilated", "unet_lite", "unet_pix2pix", "unet_seed")

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``factory`` under its own function name; a duplicate name is an error."""
    name = factory.__name__
    if name in _ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is already registered")
    _ARCHITECTURES[name] = factory
    return factory


def create_architecture(name: str, **kwargs) -> nn.Module:
    _import_builtin_architectures()
    try:
        factory = _ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(list_architectures())}") from None
    return factory(**kwargs)


# The timm networks a weights file may name (an expert's encoder, the classifier). A name is
# never passed to timm unchecked: timm resolves "hf-hub:owner/model" by fetching a config
# from the internet and building whatever it describes.
TIMM_MODELS = (
    *(f"efficientnet_lite{n}" for n in range(5)),
    *(f"efficientnet_b{n}" for n in range(4)),
    "mobilenetv3_small_100",
    "mobilenetv3_large_100",
    "resnet18",
    "resnet34",
    "resnet50",
)


def create_timm_model(name: str, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=False, ...)`` for a name in ``TIMM_MODELS`` only."""
    if name not in TIMM_MODELS:
        raise ValueError(f"timm network {name!r} is not one colorize builds (known: {', '.join(TIMM_MODELS)})")
    import timm

    # pretrained=False: weights come from our own files (or pipelines.pretrained in training).
    return timm.create_model(name, pretrained=False, **kwargs)


def list_architectures() -> list[str]:
    _import_builtin_architectures()
    return sorted(_ARCHITECTURES)


def _import_builtin_architectures() -> None:
    # Imported on first use so that merely importing the registry stays cheap.
    for name in BUILTIN_ARCHITECTURES:
        importlib.import_module(f"colorize.experts.{name}")
