"""Our clean-room StyleGAN2 generator: built from synthetic pickled trees (32 px, tiny widths)
and checked against the paper's formulas written out here from the raw tensors (the mapping,
per-sample grouped convolutions, upfirdn by its definition, the whole synthesis network with a
different w per layer), for truncation, foreign layouts and ONNX export."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from stylegan_fixtures import upfirdn_by_definition

from export.onnx_export import export_onnx, verify_onnx
from export.stylegan2 import STYLEGAN3, build, config_f, synthetic, upfirdn2d
from export.stylegan_export import MappingNetwork, SynthesisNetwork
from export.stylegan_pickle import PickledModule
from installation.errors import UserError

TINY: dict[str, Any] = {
    "z_dim": 32,
    "c_dim": 0,
    "w_dim": 32,
    "img_resolution": 32,
    "img_channels": 3,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 512, "channel_max": 32, "conv_clamp": 256},
}


def tiny(**changes: Any) -> dict[str, Any]:
    return {**TINY, **changes}


def latents(count: int, size: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(count, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("repository", ["stylegan2-ada-pytorch", STYLEGAN3])
@pytest.mark.parametrize("architecture", ["skip", "orig", "resnet"])
def test_builds_every_architecture_of_both_repositories(repository: str, architecture: str) -> None:
    synthesis = {**TINY["synthesis_kwargs"], "architecture": architecture}
    generator = build(synthetic(tiny(repository=repository, synthesis_kwargs=synthesis), 0))
    with torch.no_grad():
        image = generator(latents(2, 32), truncation_psi=0.7)
    assert (generator.num_ws, generator.w_dim, generator.transform) == (8, 32, None)
    assert image.shape == (2, 3, 32, 32)
    assert torch.isfinite(image).all() and image.std() > 0.1


def test_a_frozen_mapping_layer_keeps_its_weights_as_buffers() -> None:
    """Freeze-M (``freeze_layers``) stores a layer's weight and bias as buffers, not
    parameters: the same numbers, so the same w."""
    network = synthetic(TINY, 0)
    mapping = network.children["mapping"]
    fc0 = mapping.children["fc0"]
    frozen_fc0 = replace(fc0, parameters={}, buffers=dict(fc0.parameters))
    frozen = replace(
        network,
        children={
            **network.children,
            "mapping": replace(mapping, children={**mapping.children, "fc0": frozen_fc0}),
        },
    )
    z = latents(3, 32)
    with torch.no_grad():
        assert torch.equal(build(frozen).map(z), build(network).map(z))


def test_a_conditional_generator_maps_each_label_to_its_own_w() -> None:
    generator = build(synthetic(tiny(c_dim=4), 0))
    z = latents(1, 32).expand(4, -1)
    with torch.no_grad():
        w = generator.map(z, torch.eye(4))
        image = generator(z, torch.eye(4))
    assert w.shape == (4, 32) and image.shape == (4, 3, 32, 32)
    assert torch.cdist(w, w).add(torch.eye(4)).min() > 1e-3
    with pytest.raises(ValueError, match="needs c"):
        generator.map(z)


def test_the_mapping_network_equals_the_one_written_from_the_paper() -> None:
    """z and the label's embedding each normalised to unit mean square and concatenated, then
    fully connected layers with weights times 0.01/sqrt(fan-in) (lr multiplier 0.01), biases
    times 0.01, leaky ReLU 0.2 times sqrt(2)."""
    net = synthetic(tiny(c_dim=4), 14)
    tensors = net.tensors()
    z, c = latents(3, 32, seed=15), torch.eye(4)[[0, 2, 3]]

    def normalised(x: torch.Tensor) -> torch.Tensor:
        return x / (x.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()

    embedded = c @ tensors["mapping.embed.weight"].t() / 2 + tensors["mapping.embed.bias"]
    x = torch.cat([normalised(z), normalised(embedded)], dim=1)
    for index in range(2):
        weight = tensors[f"mapping.fc{index}.weight"]
        x = x @ weight.t() * 0.01 / math.sqrt(weight.shape[1])
        x = F.leaky_relu(x + tensors[f"mapping.fc{index}.bias"] * 0.01, 0.2) * math.sqrt(2)
    with torch.no_grad():
        ours = build(net).map(z, c)
    assert (ours - x).abs().max() < 1e-5 * x.abs().max()


def test_truncation_zero_gives_the_image_of_w_avg() -> None:
    generator = build(synthetic(tiny(c_dim=4), 2))
    with torch.no_grad():
        truncated = generator(latents(3, 32), torch.eye(4)[:3], truncation_psi=0.0)
        average = generator.synthesize(generator.w_avg.expand(3, generator.num_ws, -1))
    assert torch.equal(truncated, average)
    assert truncated.std() > 0.1


def modulated_reference(
    tensors: dict[str, torch.Tensor], x: torch.Tensor, w: torch.Tensor, up: int
) -> torch.Tensor:
    """A synthesis layer from the paper's formulas and the pickled tensors, the fused way: one
    modulated and demodulated weight per sample in one grouped convolution over the batch;
    up-sampling as zero insertion, the [1,3,3,1] filter at gain 4 and a true convolution with
    the weight, padding applied once at the start. Gains: affine 1/sqrt(w_dim), activation
    sqrt(2); clamp 256."""
    batch, channels = x.shape[:2]
    affine = tensors["affine.weight"]
    styles = w @ affine.t() / math.sqrt(affine.shape[1]) + tensors["affine.bias"]
    modulated = tensors["weight"][None] * styles[:, None, :, None, None]
    modulated = (
        modulated
        * torch.rsqrt(modulated.square().sum(dim=(2, 3, 4)) + 1e-8)[:, :, None, None, None]
    )
    kernels = modulated.reshape(-1, channels, 3, 3)
    flat = x.reshape(1, batch * channels, *x.shape[2:])
    if up == 1:
        out = F.conv2d(flat, kernels, padding=1, groups=batch)
    else:
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        flat = upfirdn_by_definition(flat, torch.outer(taps, taps) / 64, 2, 1, (3, 2, 3, 2), 4)
        out = F.conv2d(flat, kernels.flip([2, 3]), groups=batch)
    out = out.reshape(batch, -1, *out.shape[2:])
    out = out + tensors["noise_const"] * tensors["noise_strength"]
    out = out + tensors["bias"][None, :, None, None]
    return (F.leaky_relu(out, 0.2) * math.sqrt(2)).clamp(-256, 256)


def torgb_reference(
    tensors: dict[str, torch.Tensor], x: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """Modulated 1x1 convolution, styles times 1/sqrt(in channels), no demodulation."""
    affine = tensors["affine.weight"]
    styles = w @ affine.t() / math.sqrt(affine.shape[1]) + tensors["affine.bias"]
    styles = styles / math.sqrt(x.shape[1])
    out = torch.einsum("ncyx,oc,nc->noyx", x, tensors["weight"][:, :, 0, 0], styles)
    return (out + tensors["bias"][None, :, None, None]).clamp(-256, 256)


def under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def synthesis_reference(net: PickledModule, ws: torch.Tensor) -> torch.Tensor:
    """The 'skip' synthesis network as the paper draws it: per block conv0 (up 2) and conv1,
    the image so far up-sampled (zero insertion, padding 2 and 1, filter at gain 4) plus the
    block's toRGB; block b reads ws[:, i : i + 3] (the 4x4 block ws[:, 0 : 2]), i += its
    convolutions."""
    tensors = net.tensors()
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    x = img = None
    first = 0
    for res in (4, 8, 16, 32):
        block = under(tensors, f"synthesis.b{res}.")
        if x is None:
            x = block["const"][None].expand(ws.shape[0], -1, -1, -1)
            convs = [("conv1", 1)]
        else:
            convs = [("conv0", 2), ("conv1", 1)]
        for index, (name, up) in enumerate(convs):
            x = modulated_reference(under(block, f"{name}."), x, ws[:, first + index], up)
        rgb = torgb_reference(under(block, "torgb."), x, ws[:, first + len(convs)])
        if img is not None:
            img = upfirdn_by_definition(img, torch.outer(taps, taps) / 64, 2, 1, (2, 1, 2, 1), 4)
        img = rgb if img is None else img + rgb
        first += len(convs)
    return img


@pytest.mark.parametrize("name", ["conv0", "conv1"])
def test_the_non_fused_modulated_convolution_equals_the_grouped_one(name: str) -> None:
    net = synthetic(TINY, 4)
    layer = getattr(build(net).blocks[2], name)
    x = latents(3 * 32 * 8 * 8, 1, seed=5).reshape(3, 32, 8, 8)
    if name == "conv1":
        x = F.interpolate(x, scale_factor=2)
    w = latents(3, 32, seed=6)
    with torch.no_grad():
        ours = layer(x, w)
    reference = modulated_reference(
        under(net.tensors(), f"synthesis.b16.{name}."), x, w, 2 if name == "conv0" else 1
    )
    assert ours.shape == reference.shape == (3, 32, 16, 16)
    assert (ours - reference).abs().max() < 1e-4 * reference.abs().max()


def test_the_synthesis_network_equals_the_one_written_from_the_paper() -> None:
    """A different w for every layer, so a w read from the wrong index shows."""
    net = synthetic(TINY, 12)
    ws = latents(2 * 8, 32, seed=13).reshape(2, 8, 32)
    with torch.no_grad():
        ours = build(net).synthesize(ws)
    reference = synthesis_reference(net, ws)
    assert ours.shape == reference.shape == (2, 3, 32, 32)
    assert (ours - reference).abs().max() < 1e-4 * reference.abs().max()


@pytest.mark.parametrize(
    ("up", "down", "padding"),
    [
        (2, 1, (2, 1, 2, 1)),
        (1, 2, (1, 1, 1, 1)),
        (2, 2, (1, 0, 2, 1)),
        (1, 1, (0, 2, 1, 0)),
        (2, 1, (-1, 0, 1, -2)),
    ],
)
def test_upfirdn_as_pad_and_conv_equals_its_definition(
    up: int, down: int, padding: tuple[int, int, int, int]
) -> None:
    x = latents(2 * 3 * 5 * 6, 1, seed=7).reshape(2, 3, 5, 6)
    asymmetric = torch.tensor([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0]])
    ours = upfirdn2d(x, asymmetric, up, down, padding, gain=up**2)
    reference = upfirdn_by_definition(x, asymmetric, up, down, padding, up**2)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max() < 1e-5
    separable = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    both = (
        upfirdn2d(x, separable, up, down, padding),
        upfirdn2d(x, torch.outer(separable, separable), up, down, padding),
    )
    assert torch.allclose(*both, atol=1e-6)


def changed(net: PickledModule, path: str, edit: Any) -> PickledModule:
    """``net`` with ``edit`` applied to the node at the dotted ``path``."""
    if not path:
        return edit(net)
    head, _, rest = path.partition(".")
    children = dict(net.children)
    children[head] = changed(children[head], rest, edit)
    return replace(net, children=children)


def without(parameters: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    return {key: value for key, value in parameters.items() if key != name}


@pytest.mark.parametrize(
    ("path", "edit", "message"),
    [
        (
            "synthesis.b8.conv0",
            lambda node: replace(node, parameters=without(node.parameters, "noise_strength")),
            r"^tensor synthesis\.b8\.conv0\.noise_strength \[\] is missing$",
        ),
        (
            "synthesis.b16.torgb",
            lambda node: replace(
                node, parameters={**node.parameters, "weight": torch.zeros(3, 16, 1, 1)}
            ),
            r"^tensor synthesis\.b16\.torgb\.weight has shape \[3, 16, 1, 1\], "
            r"expected \[3, 32, 1, 1\]$",
        ),
        (
            "mapping",
            lambda node: replace(node, buffers={**node.buffers, "w_std": torch.zeros(32)}),
            r"^tensor mapping\.w_std \[32\] is not part of a StyleGAN2 generator",
        ),
        (
            "synthesis.b32.conv1",
            lambda node: replace(node, attributes=without(node.attributes, "act_gain")),
            r"^synthesis\.b32\.conv1: the SynthesisLayer has no attribute 'act_gain'$",
        ),
        (
            "",
            lambda node: replace(node, init_kwargs={**node.init_kwargs, "img_resolution": 48}),
            r"img_resolution is 48, not a power of 2",
        ),
        (
            "synthesis.b8.conv0",
            lambda node: replace(node, attributes={**node.attributes, "up": 4}),
            r"^synthesis\.b8\.conv0\.up is 4, expected 2 for this layout$",
        ),
        (
            "mapping.fc0",
            lambda node: replace(node, attributes={**node.attributes, "activation": ["lrelu"]}),
            r"^mapping\.fc0\.activation is \['lrelu'\]; supported: linear, relu, lrelu$",
        ),
    ],
)
def test_a_foreign_layout_is_one_line_naming_the_tensor(path: str, edit: Any, message: str) -> None:
    net = changed(synthetic(TINY, 0), path, edit)
    with pytest.raises(UserError, match=message) as caught:
        build(net)
    assert "\n" not in str(caught.value)


def test_synthetic_trees_and_images_are_determined_by_the_seed() -> None:
    first, again, other = synthetic(TINY, 9), synthetic(TINY, 9), synthetic(TINY, 10)
    assert all(torch.equal(t, again.tensors()[n]) for n, t in first.tensors().items())
    assert not torch.equal(first.tensors()["mapping.w_avg"], other.tensors()["mapping.w_avg"])
    z = latents(2, 32)
    with torch.no_grad():
        assert torch.equal(build(first)(z), build(again)(z))


def test_config_f_at_256_px_has_nvidias_layout() -> None:
    net = synthetic(config_f(256), 0)
    tensors = net.tensors()
    assert net.attributes["num_ws"] == 14 and net.children["mapping"].attributes["num_ws"] == 14
    assert tensors["synthesis.b64.conv1.weight"].shape == (512, 512, 3, 3)
    assert tensors["synthesis.b256.conv0.weight"].shape == (128, 256, 3, 3)
    assert tensors["synthesis.b256.conv0.noise_const"].shape == (256, 256)
    assert torch.equal(
        tensors["synthesis.b8.resample_filter"],
        torch.tensor([[1.0, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]]) / 64,
    )
    blocks = net.children["synthesis"].children
    assert [blocks[f"b{res}"].attributes["use_fp16"] for res in (16, 32, 64)] == [False, True, True]
    assert build(net).num_ws == 14


def test_mapping_and_synthesis_export_to_onnx_with_a_dynamic_batch(tmp_path: Path) -> None:
    generator = build(synthetic(TINY, 11))
    for name, module, shape, input_name in (
        ("mapping", MappingNetwork(generator), [32], "z"),
        ("synthesis", SynthesisNetwork(generator), [generator.num_ws, 32], "ws"),
    ):
        path = tmp_path / f"{name}.onnx"
        export_onnx(module, path, shape, input_name=input_name)
        assert verify_onnx(module, path, shape).max_abs_error < 1e-4
