"""experts.architectures: the registry, and every registered U-Net on awkward sizes."""

import pytest
import torch

from colorize.experts.architectures import create_architecture, list_architectures, register_architecture
from colorize.pipelines.pretrained import (
    IMAGENET_PACKAGES,
    PretrainedUnavailable,
    imagenet_state_dict,
    load_imagenet_encoder,
)


def test_builtin_architectures_are_registered():
    assert {"unet_seed", "unet_lite"} <= set(list_architectures())


def test_duplicate_name_is_an_error():
    def unet_seed():  # same name as a built-in
        raise AssertionError("never built")

    list_architectures()  # make sure built-ins are loaded first
    with pytest.raises(ValueError, match="already registered"):
        register_architecture(unet_seed)


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="unet_seed"):
        create_architecture("no_such_net")


def test_seed_unet_matches_the_paper_size():
    parameters = sum(p.numel() for p in create_architecture("unet_seed").parameters())
    assert 0.9e6 <= parameters <= 1.1e6, f"{parameters:,} parameters; the paper's U-Net has about 1.0 M"


@pytest.mark.parametrize("name", ["unet_seed", "unet_lite"])
@pytest.mark.parametrize("size", [(64, 64), (37, 51), (17, 90)])
def test_any_size_goes_in_and_ab_comes_out_in_range(name, size):
    net = create_architecture(name).eval()
    with torch.inference_mode():
        out = net(torch.rand(2, 1, *size) * 2 - 1)
    assert out.shape[:2] == (2, 2)
    assert out.abs().max() <= 1.0
    # Chroma may come out at reduced resolution, but never larger than the input.
    assert out.shape[-2] <= size[0] and out.shape[-1] <= size[1]


def test_lite_unet_predicts_at_its_output_stride():
    net = create_architecture("unet_lite", output_stride=2).eval()
    with torch.inference_mode():
        assert net(torch.zeros(1, 1, 64, 96)).shape[-2:] == (32, 48)


def test_lite_unet_rejects_a_stride_the_encoder_lacks():
    with pytest.raises(ValueError, match="output_stride"):
        create_architecture("unet_lite", output_stride=3)


@pytest.mark.parametrize("architecture", sorted(IMAGENET_PACKAGES))
def test_imagenet_weights_fill_the_encoder_they_were_made_for_and_no_other(architecture):
    pytest.importorskip(IMAGENET_PACKAGES[architecture][1], reason=f"needs {IMAGENET_PACKAGES[architecture][0]}")
    model = create_architecture("unet_lite", encoder=architecture)
    load_imagenet_encoder(model.encoder, architecture)
    source = imagenet_state_dict(architecture)
    deepest = max(k for k in source if k.startswith("blocks.") and k.endswith("conv_pwl.weight"))
    assert torch.equal(model.encoder.state_dict()[deepest], source[deepest])
    assert model.encoder.conv_stem.weight.shape[1] == 1  # the gray stem, folded from RGB

    other = "efficientnet_lite1" if architecture != "efficientnet_lite1" else "efficientnet_lite0"
    with pytest.raises(PretrainedUnavailable):
        load_imagenet_encoder(create_architecture("unet_lite", encoder=other).encoder, architecture)


def test_each_builtin_module_registers_the_architecture_of_its_own_name():
    # The command line offers BUILTIN_ARCHITECTURES without importing them: the names must be true.
    from colorize.experts import architectures

    for name in architectures.BUILTIN_ARCHITECTURES:
        assert architectures._ARCHITECTURES[name].__module__ == f"colorize.experts.{name}"
    assert set(architectures.BUILTIN_ARCHITECTURES) == set(list_architectures())


@pytest.mark.parametrize("height, width", [(37, 51), (224, 224), (3, 2), (5, 256)])
def test_pix2pix_pads_as_torch_pads_by_reflection_or_replication(height, width):
    from torch.nn import functional as F

    from colorize.experts.unet_pix2pix import _padded

    image = torch.rand(2, 1, height, width, generator=torch.Generator().manual_seed(0))
    pad_h, pad_w = -height % 256, -width % 256
    reflect = pad_h < height and pad_w < width
    expected = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect" if reflect else "replicate")
    assert torch.equal(_padded(image, pad_h, pad_w, reflect), expected)
