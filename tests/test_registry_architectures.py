"""Every registered architecture, tiny: any size in, ab out in range, a faithful model file, an
ONNX graph colorize runs that predicts as torch does, one training step.

Driven by the registry: a newly registered architecture is covered here by one line in
``TINY_ARGUMENTS``, and fails until it has one.
"""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from colorize.core.modelfile import read_metadata
from colorize.experts.architectures import create_architecture, list_architectures
from colorize.experts.networks import load_model_file, load_network, save_model
from colorize.experts.store import Expert

# Keyword arguments that build each architecture small enough for a CPU test. Lists rather
# than tuples: that is what the model file's JSON gives back.
TINY_ARGUMENTS = {
    "cnn_zhang": {"width": 0.0625},
    "unet_dilated": {"widths": [4, 8, 16], "dilations": [2, 4]},
    "unet_lite": {"decoder_channels": [16, 12, 8, 8]},
    "unet_pix2pix": {"ngf": 4},
    "unet_seed": {"widths": [4, 8, 16]},
}
ARCHITECTURES = list_architectures()


def _tiny(name: str) -> tuple[dict, nn.Module]:
    if name not in TINY_ARGUMENTS:
        pytest.fail(
            f"architecture {name!r} is registered but has no entry in TINY_ARGUMENTS of {__name__}: "
            "add keyword arguments that build a tiny version of it"
        )
    torch.manual_seed(0)
    return TINY_ARGUMENTS[name], create_architecture(name, **TINY_ARGUMENTS[name])


def _lightness(batch: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(batch, 1, height, width, generator=generator) * 2 - 1


def test_tiny_arguments_name_only_registered_architectures():
    stale = sorted(set(TINY_ARGUMENTS) - set(ARCHITECTURES))
    assert not stale, f"TINY_ARGUMENTS names architectures that are not registered: {stale}"


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("size", [(37, 51), (64, 64)])
def test_any_size_goes_in_and_ab_comes_out_in_range(name, size):
    _, net = _tiny(name)
    with torch.inference_mode():
        out = net.eval()(_lightness(2, *size))
    assert out.shape[:2] == (2, 2), f"{name}: output {tuple(out.shape)}, want (2, 2, h, w)"
    assert out.shape[-2] <= size[0] and out.shape[-1] <= size[1], f"{name}: {tuple(out.shape)} larger than {size}"
    assert torch.isfinite(out).all() and out.abs().max() <= 1.0, f"{name}: max |ab| {out.abs().max():.3f}"


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_model_file_rebuilds_a_network_that_predicts_identically(name, tmp_path):
    arguments, net = _tiny(name)
    x = _lightness(2, 37, 51)
    with torch.no_grad():
        net.train()(x)  # moves BatchNorm's running statistics away from their initial values
    metadata = {"kind": "expert", "architecture": name, "arguments": arguments, "work_size": 64, "category": "tiny"}
    path = save_model(net, tmp_path / f"{name}.safetensors", metadata, half=False)

    model_file = read_metadata(path)
    meta = model_file.metadata
    loaded = load_network(model_file, lambda: create_architecture(meta["architecture"], **meta["arguments"]))
    with torch.inference_mode():
        expected, got = net.eval()(x), loaded(x)
        fresh = create_architecture(name, **arguments).eval()(x)
    assert not loaded.training
    assert torch.equal(got, expected), f"{name}: reloaded output differs by {(got - expected).abs().max():.2e}"
    # The comparison means something only if the weights decide the output.
    assert not torch.equal(fresh, expected), f"{name}: a freshly initialised network predicts the same"


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_model_file_runs_as_an_onnx_graph_that_predicts_as_torch(name, tmp_path):
    """Inference runs only ONNX graphs: each architecture's must pass colorize's graph check
    and give torch's output at the work size and, unless exported for that one size, at others
    (a trace keeps the branches its example took: odd sides once lost their resize)."""
    arguments, net = _tiny(name)
    with torch.no_grad():
        net.train()(_lightness(2, 37, 51))
    metadata = {"kind": "expert", "architecture": name, "arguments": arguments, "work_size": 48, "category": "tiny"}
    path = save_model(net, tmp_path / f"{name}.safetensors", metadata)
    expert = Expert.from_file(path)  # exported as the store exports, and the graph checked
    _, network = load_model_file(path)
    sizes = [(48, 48)] if getattr(network, "exports_at_one_size", False) else [(48, 48), (37, 51), (64, 90)]
    for size in sizes:
        lightness = (_lightness(1, *size).numpy() + 1) * 50
        with torch.inference_mode():
            output = network(torch.from_numpy(expert.normalization.network_input(lightness))).numpy()
        expected = expert.normalization.chroma(output)
        got = expert.predict_ab(lightness)
        assert got.shape == expected.shape, (name, size, got.shape, expected.shape)
        assert np.abs(got - expected).max() < 1e-3, (name, size, np.abs(got - expected).max())


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_one_training_step_is_finite_and_moves_every_parameter(name):
    _, net = _tiny(name)
    net.train()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = _lightness(2, 37, 51)
    target = torch.rand(2, 2, 37, 51, generator=torch.Generator().manual_seed(2)) * 2 - 1

    out = net(x)
    loss = F.l1_loss(out, F.interpolate(target, size=out.shape[-2:], mode="bilinear", align_corners=False))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    assert torch.isfinite(loss), f"{name}: loss {loss.item()}"
    unchanged = [n for n, p in net.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged, f"{name}: {len(unchanged)} parameters got no update, e.g. {unchanged[:3]}"


@pytest.mark.parametrize("size, expected", [((64, 64), (16, 16)), ((37, 51), (10, 13)), ((3, 2), (1, 1))])
def test_zhang_cnn_predicts_at_a_quarter_of_the_input(size, expected):
    _, net = _tiny("cnn_zhang")
    with torch.inference_mode():
        assert net.eval()(_lightness(1, *size)).shape[-2:] == expected


def test_zhang_cnn_at_full_width_has_the_papers_layers():
    with torch.device("meta"):
        net = create_architecture("cnn_zhang", width=1)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    # 2 + 2 + 3 + 3 + 3 + 3 + 3 convolutions in blocks 1-7, 2 more in block 8, the 1x1 head.
    assert len(convs) == 22, len(convs)
    assert [m.out_channels for m in convs if m.stride == (2, 2)] == [64, 128, 256]
    assert [m.dilation for m in convs].count((2, 2)) == 6
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 2


def test_dilated_unet_keeps_a_quarter_resolution_through_its_dilated_middle():
    _, net = _tiny("unet_dilated")
    dilated = [m for m in net.modules() if isinstance(m, nn.Conv2d) and max(m.dilation) > 1]
    assert [m.dilation[0] for m in dilated] == TINY_ARGUMENTS["unet_dilated"]["dilations"]
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append((i[0].shape[-2:], o.shape[-2:]))) for m in dilated]
    with torch.inference_mode():
        out = net.eval()(_lightness(1, 64, 96))
    for hook in hooks:
        hook.remove()
    assert shapes == [((16, 24), (16, 24))] * len(dilated), shapes
    assert out.shape[-2:] == (64, 96)


def _reaches_the_corner(dilations: list[int]) -> bool:
    """Whether the input's corner pixel changes the centre pixel's prediction (128 x 128 input)."""
    torch.manual_seed(0)
    net = create_architecture("unet_dilated", widths=[4, 8, 8], dilations=dilations).eval()
    x = _lightness(1, 128, 128).requires_grad_()
    net(x)[0, 0, 64, 64].backward()
    return bool(x.grad[0, 0, :8, :8].abs().sum() > 0)


def test_dilated_unet_sees_across_the_image_where_plain_convolutions_do_not():
    assert _reaches_the_corner([2, 4, 8, 16])
    assert not _reaches_the_corner([1, 1, 1, 1])


def test_pix2pix_drops_out_after_three_up_steps_in_training_only():
    _, net = _tiny("unet_pix2pix")
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3
    x = _lightness(2, 37, 51)
    with torch.no_grad():
        assert not torch.equal(net.train()(x), net(x))
        assert torch.equal(net.eval()(x), net(x))
