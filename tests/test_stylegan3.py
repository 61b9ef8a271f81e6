"""Our StyleGAN3 (T and R) generator on synthetic pickled trees.

NVIDIA's code is not run here (nor downloaded), so its numerics are checked through what must
hold of any correct implementation: the Alias-Free architecture's equivariances (config R is
exactly equivariant to quarter turns, both configs to whole-pixel shifts, which only holds
when every padding, filter orientation and sample position is right), resampling against a
direct transcription of its definition, the filter design against values from SciPy's
``firwin``, and the layer schedule against NVIDIA's released FFHQ 1024 px StyleGAN3-T.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from stylegan_fixtures import upfirdn_by_definition

from export.onnx_export import export_graph
from export.stylegan3 import FilteredLeakyReLU, build
from export.stylegan3_design import design_lowpass_filter, small_config, synthetic
from export.stylegan_export import SynthesisNetwork
from export.stylegan_pickle import PickledModule
from installation.errors import UserError


@pytest.fixture(scope="module", params=["T", "R"])
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


def ws_for(generator: torch.nn.Module, count: int, seed: int = 0) -> torch.Tensor:
    z = torch.randn(count, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w = generator.map(z)
    return w.unsqueeze(1).repeat(1, generator.num_ws, 1)


def rotation(degrees: float) -> torch.Tensor:
    angle = math.radians(degrees)
    return torch.tensor(
        [
            [math.cos(angle), -math.sin(angle), 0.0],
            [math.sin(angle), math.cos(angle), 0.0],
            [0.0, 0.0, 1.0],
        ]
    )


def test_builds_both_configs_at_two_sizes(variant: str) -> None:
    for resolution in (32, 64):
        generator = build(synthetic(small_config(variant, resolution), seed=1))
        assert generator.num_ws == 4 + 2
        torch.testing.assert_close(generator.transform, torch.eye(3))
        ws = ws_for(generator, 2)
        with torch.no_grad():
            pair = generator.synthesize(ws)
            alone = generator.synthesize(ws[1:])
        assert pair.shape == (2, 3, resolution, resolution)
        assert torch.isfinite(pair).all() and 0.05 < pair.std() < 2
        # An item does not depend on the rest of its batch.
        torch.testing.assert_close(pair[1:], alone, atol=1e-5, rtol=0)


def test_conditional_model_maps_with_its_label() -> None:
    generator = build(synthetic({**small_config("T"), "c_dim": 5}, seed=2))
    z = torch.randn(2, generator.z_dim)
    labels = torch.eye(5)[[1, 3]]
    with torch.no_grad():
        w = generator.map(z, labels)
        other = generator.map(z, torch.eye(5)[[2, 2]])
    assert w.shape == (2, generator.w_dim)
    assert not torch.allclose(w, other)


def test_truncation_zero_draws_the_average_face(variant: str) -> None:
    generator = build(synthetic(small_config(variant), seed=3))
    z = torch.randn(2, generator.z_dim, generator=torch.Generator().manual_seed(4))
    average = generator.w_avg.expand(2, generator.num_ws, -1)
    with torch.no_grad():
        truncated = generator(z, truncation_psi=0.0)
        expected = generator.synthesize(average)
        untruncated = generator(z)
    torch.testing.assert_close(truncated, expected, atol=1e-6, rtol=0)
    assert (untruncated - expected).abs().max() > 0.05


def test_identity_transform_input_is_the_stored_transform(variant: str) -> None:
    generator = build(synthetic(small_config(variant), seed=5))
    ws = ws_for(generator, 2)
    with torch.no_grad():
        stored = generator.synthesize(ws)
        given = generator.synthesize(ws, torch.eye(3).expand(2, 3, 3))
        turned = generator.synthesize(ws, rotation(90).expand(2, 3, 3))
    torch.testing.assert_close(given, stored, atol=1e-6, rtol=0)
    assert (turned - stored).abs().max() > 0.1


def test_config_r_is_equivariant_to_quarter_turns() -> None:
    """R uses 1x1 convolutions and radially symmetric filters, so turning the input's
    frequencies by 90 degrees turns the image exactly: only a symmetric handling of every
    padding, filter and sample grid gives that."""
    generator = build(synthetic(small_config("R"), seed=6))
    ws = ws_for(generator, 1)
    with torch.no_grad():
        upright = generator.synthesize(ws)
        turned = generator.synthesize(ws, rotation(90).unsqueeze(0))
    torch.testing.assert_close(turned, torch.rot90(upright, 1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_whole_pixel_translation_shifts_the_image(variant: str) -> None:
    """Translation equivariance (both configs): the transform is the inverse of the image's
    motion, in units of the image width, so +1/R in x moves the content one pixel left."""
    resolution = 32
    generator = build(synthetic(small_config(variant, resolution), seed=7))
    ws = ws_for(generator, 1)
    moves = torch.eye(3).repeat(2, 1, 1)
    moves[0, 0, 2] = 1 / resolution
    moves[1, 1, 2] = 1 / resolution
    with torch.no_grad():
        still = generator.synthesize(ws)
        moved = generator.synthesize(ws.expand(2, -1, -1), moves)
    inside = slice(4, -4)
    for index, expected in enumerate(
        (torch.roll(still, -1, dims=3), torch.roll(still, -1, dims=2))
    ):
        error = (moved[index] - expected[0])[:, inside, inside].abs().max()
        assert error < 2e-3, error
        assert (moved[index] - still[0])[:, inside, inside].abs().max() > 10 * error


def test_one_tap_filtered_lrelu_is_bias_lrelu_gain_clamp() -> None:
    x = torch.randn(2, 4, 5, 5) * 3
    bias = torch.randn(4)
    step = FilteredLeakyReLU(bias, None, None, 1, 1, (0, 0, 0, 0), math.sqrt(2), 0.2, 2.5)
    expected = (F.leaky_relu(x + bias[:, None, None], 0.2) * math.sqrt(2)).clamp(-2.5, 2.5)
    torch.testing.assert_close(step(x), expected, atol=1e-6, rtol=0)
    linear = FilteredLeakyReLU(bias, None, None, 1, 1, (0, 0, 0, 0), 1.0, 1.0, None)
    torch.testing.assert_close(linear(x), x + bias[:, None, None], atol=1e-6, rtol=0)


def test_resampling_matches_its_definition() -> None:
    """Asymmetric taps catch a filter used the wrong way round; odd paddings a wrong split."""
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(1, 2, 7, 7, generator=generator)
    up_taps = torch.rand(6, generator=generator)
    down_taps = torch.rand(5, 5, generator=generator)
    cases = [
        (dict(up_filter=up_taps, down_filter=None, up=2, down=1, padding=(3, 2, -1, 4)), 4.0),
        (dict(up_filter=None, down_filter=down_taps, up=1, down=2, padding=(1, -2, 0, 3)), 1.0),
    ]
    for arguments, gain in cases:
        step = FilteredLeakyReLU(torch.zeros(2), **arguments, gain=1.0, slope=1.0, clamp=None)
        taps = arguments["up_filter"] if arguments["up"] > 1 else arguments["down_filter"]
        expected = upfirdn_by_definition(
            x, taps, arguments["up"], arguments["down"], arguments["padding"], gain
        )
        np.testing.assert_allclose(step(x).numpy(), expected.numpy(), atol=1e-5)


def test_filter_design_matches_scipy_firwin() -> None:
    """The first layer's upsampling filter of every StyleGAN3 (12 taps, cutoff 2, transition
    12 wide at rate 32). Reference values from scipy.signal.firwin and, for the radial
    filter, scipy.special.j1 under scipy.signal's Kaiser window (SciPy 1.17)."""
    separable = design_lowpass_filter(12, cutoff=2.0, width=12.0, fs=32.0)
    firwin = [
        0.00079190, 0.01001832, 0.03894952, 0.09241279, 0.15652561, 0.20130186,
        0.20130186, 0.15652561, 0.09241279, 0.03894952, 0.01001832, 0.00079190,
    ]  # fmt: skip
    np.testing.assert_allclose(separable, firwin, atol=1e-7)
    radial = design_lowpass_filter(12, cutoff=2.0, width=12.0, fs=32.0, radial=True)
    assert radial.shape == (12, 12) and abs(radial.sum() - 1) < 1e-6
    row = [0.00020526, 0.00227863, 0.00819805, 0.01854216, 0.03053336, 0.03875488]
    np.testing.assert_allclose(radial[5, :6], row, atol=1e-7)
    np.testing.assert_allclose(radial, radial.T, atol=1e-9)
    assert design_lowpass_filter(1, cutoff=2.0, width=12.0, fs=32.0) is None


def test_schedule_matches_nvidia_ffhq_1024_t() -> None:
    """Layer names of NVIDIA's released stylegan3-t-ffhq-1024x1024 (name = index, size,
    channels): the cutoff, stopband, rate, size and width schedule all show in them."""
    config = dict(z_dim=8, w_dim=8, c_dim=0, img_resolution=1024, img_channels=3, mapping_kwargs={})
    network = synthetic(config, seed=0)
    names = network.children["synthesis"].attributes["layer_names"]
    assert names == [
        "L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512",
        "L6_148_512", "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81",
        "L11_1044_51", "L12_1044_32", "L13_1024_32", "L14_1024_3",
    ]  # fmt: skip
    last = network.children["synthesis"].children["L13_1024_32"].attributes
    assert (last["up_factor"], last["down_factor"], last["up_taps"]) == (2, 2, 12)
    assert last["padding"] == [-11, -12, -11, -12] and abs(last["out_half_width"] - 118.346) < 1e-3


def replace_tensor(
    network: PickledModule, dotted: str, value: torch.Tensor | None
) -> PickledModule:
    """A copy of ``network`` with one tensor replaced (None: removed)."""
    head, _, rest = dotted.partition(".")
    if rest:
        children = dict(network.children)
        children[head] = replace_tensor(children[head], rest, value)
        return dataclasses.replace(network, children=children)
    field = "parameters" if head in network.parameters else "buffers"
    tensors = dict(getattr(network, field))
    if value is None:
        del tensors[head]
    else:
        tensors[head] = value
    return dataclasses.replace(network, **{field: tensors})


def refusal(network: PickledModule) -> str:
    with pytest.raises(UserError) as caught:
        build(network)
    return str(caught.value)


def test_foreign_layout_is_one_line_naming_the_tensor() -> None:
    network = synthetic(small_config("T"), seed=9)
    weight = "synthesis.L2_52_16.weight"
    cases = {
        weight: replace_tensor(network, weight, torch.zeros(16, 8, 3, 3)),
        "synthesis.L1_52_16.up_filter": replace_tensor(
            network, "synthesis.L1_52_16.up_filter", None
        ),
        "synthesis.input.freqs": replace_tensor(network, "synthesis.input.freqs", torch.zeros(16)),
        "synthesis.input.extra": replace_tensor(network, "synthesis.input.extra", torch.zeros(2)),
    }
    for name, broken in cases.items():
        message = refusal(broken)
        assert name in message and "\n" not in message, message
    assert "shape [16, 8, 3, 3], expected [16, 16, 3, 3]" in refusal(cases[weight])


def test_inconsistent_padding_is_refused() -> None:
    network = synthetic(small_config("T"), seed=10)
    synthesis = network.children["synthesis"]
    layer = synthesis.children["L0_36_16"]
    shifted = dataclasses.replace(layer, attributes={**layer.attributes, "padding": [9, 12, 9, 8]})
    broken = dataclasses.replace(
        network,
        children={
            **network.children,
            "synthesis": dataclasses.replace(
                synthesis, children={**synthesis.children, "L0_36_16": shifted}
            ),
        },
    )
    message = refusal(broken)
    assert "synthesis.L0_36_16.padding" in message and "\n" not in message


def test_onnx_synthesis_with_transform_matches_torch(variant: str, tmp_path: Path) -> None:
    generator = build(synthetic(small_config(variant), seed=11))
    path = tmp_path / "synthesis.onnx"
    export_graph(
        SynthesisNetwork(generator),
        path,
        {"ws": (generator.num_ws, generator.w_dim), "transform": (3, 3)},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 2):
        ws = ws_for(generator, batch, seed=batch)
        transforms = torch.stack([rotation(17.0 * (item + 1)) for item in range(batch)])
        transforms[:, 0, 2] = 0.05
        with torch.no_grad():
            expected = generator.synthesize(ws, transforms).numpy()
        (actual,) = session.run(None, {"ws": ws.numpy(), "transform": transforms.numpy()})
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


def test_damaged_attributes_are_one_line_naming_them() -> None:
    network = synthetic(small_config("T"), seed=12)
    synthesis = network.children["synthesis"]

    def with_synthesis(node: PickledModule) -> PickledModule:
        return dataclasses.replace(network, children={**network.children, "synthesis": node})

    def with_attribute(node: PickledModule, key: str, value: object) -> PickledModule:
        return dataclasses.replace(node, attributes={**node.attributes, key: value})

    layer = synthesis.children["L1_52_16"]
    cases = {
        "synthesis.layer_names": with_synthesis(with_attribute(synthesis, "layer_names", 5)),
        "synthesis.L1_52_16.down_factor": with_synthesis(
            dataclasses.replace(
                synthesis,
                children={
                    **synthesis.children,
                    "L1_52_16": with_attribute(layer, "down_factor", 0),
                },
            )
        ),
        "synthesis.input: sampling_rate 0": with_synthesis(
            dataclasses.replace(
                synthesis,
                children={
                    **synthesis.children,
                    "input": with_attribute(synthesis.children["input"], "sampling_rate", 0),
                },
            )
        ),
    }
    for name, broken in cases.items():
        message = refusal(broken)
        assert message.startswith(name) and "\n" not in message, message
