"""Architecture registry: a colorization network is a *name* with a factory.

Every factory takes keyword arguments only and returns an ``nn.Module`` mapping
normalised L, shape (B, 1, H, W) in [-1, 1], to ab / AB_SCALE, shape (B, 2, H', W').
H' x W' may be smaller than H x W (chroma is predicted at reduced resolution and
upsampled by the caller). The arguments are stored in each weights file, so a model
rebuilds from its file alone.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, TypeVar, get_args, overload

if TYPE_CHECKING:  # torch is imported by the architectures themselves, not by naming them
    from torch import nn

# The architectures that come with colorize: each module registers the one of its own name, so
# the command line can offer these names (--arch) without importing torch. The Literal is the
# type of the --arch option (a checker cannot build a Literal from a tuple, so the tuple comes from it).
BuiltinArchitecture = Literal["cnn_zhang", "unet_dilated", "unet_lite", "unet_pix2pix", "unet_seed"]
BUILTIN_ARCHITECTURES: tuple[str, ...] = get_args(BuiltinArchitecture)

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}
_Factory = TypeVar("_Factory", bound=Callable[..., "nn.Module"])


@dataclass(frozen=True)
class Bound:
    """The range of a number argument, or of each entry of a list argument."""

    low: float
    high: float


# Arguments come from a weights file's metadata, which anyone can write: a 244-byte file can
# name 3,000,000 blocks, and building them (even on the meta device, before any shape can be
# compared with the file's tensors) takes gigabytes and minutes. So every argument is bounded
# before anything is built, generously above every shipped and default value: a number by
# MAX_CHANNELS (also far above every count), a list by MAX_ENTRIES entries. An architecture
# narrows the bound of its counts and sizes where it registers (``bounds=``).
MAX_CHANNELS = 4096
MAX_ENTRIES = 64
COUNT = Bound(0, MAX_ENTRIES)  # blocks, levels
CHANNELS = Bound(1, MAX_CHANNELS)
_ANY_NUMBER = Bound(-MAX_CHANNELS, MAX_CHANNELS)
_BOUNDS: dict[str, Mapping[str, Bound]] = {}


@overload
def register_architecture(factory: _Factory, *, bounds: Mapping[str, Bound] | None = None) -> _Factory: ...
@overload
def register_architecture(
    factory: None = None, *, bounds: Mapping[str, Bound] | None = None
) -> Callable[[_Factory], _Factory]: ...
def register_architecture(
    factory: Callable[..., nn.Module] | None = None, *, bounds: Mapping[str, Bound] | None = None
) -> Callable[..., Any]:
    """Register ``factory`` under its own function name; a duplicate name is an error.

    Used bare (``@register_architecture``) or with ``bounds``, the ranges of named arguments
    tighter than the general ones (``@register_architecture(bounds={"blocks": COUNT})``).
    """
    if factory is None:
        return functools.partial(register_architecture, bounds=bounds)
    name = factory.__name__
    if name in _ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is already registered")
    _ARCHITECTURES[name] = factory
    _BOUNDS[name] = dict(bounds or {})
    return factory


def create_architecture(name: str, **kwargs) -> nn.Module:
    _import_builtin_architectures()
    try:
        factory = _ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(list_architectures())}") from None
    check_arguments(name, kwargs)
    return factory(**kwargs)


def check_arguments(name: str, arguments: Mapping[str, Any]) -> None:
    """Refuse (``ValueError`` naming the argument) a number or list beyond its bound; cheap,
    so it runs before anything is built. Other values are left to the factory to judge."""
    bounds = _BOUNDS.get(name, {})
    for argument, value in arguments.items():
        problem = _out_of_bound(value, bounds.get(argument, _ANY_NUMBER))
        if problem:
            raise ValueError(f"argument {argument!r} of {name} {problem}")


def _out_of_bound(value: Any, bound: Bound) -> str | None:
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ENTRIES:
            return f"has {len(value)} entries, more than {MAX_ENTRIES}"
        for entry in value:
            if problem := _out_of_bound(entry, bound):
                return problem
        return None
    # A NaN fails every comparison, so it is refused here too.
    if isinstance(value, (int, float)) and not bound.low <= value <= bound.high:
        return f"is {_shown(value)}, outside {bound.low:g} to {bound.high:g}"
    return None


def _shown(value: int | float) -> str:
    # Hundreds of digits would push the rest of a one-line message out of sight.
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"an integer of about {round(value.bit_length() * math.log10(2))} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    check_arguments(name, kwargs)  # num_classes and the like come from a weights file too
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
