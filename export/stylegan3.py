"""StyleGAN3 (Alias-Free GAN, configs T and R), written from the paper and a pickle's tensors.

NVIDIA's code for these networks is under a non-commercial licence, so this is our own
implementation of the same mathematics, fitted to the names, shapes and attributes their
pickles carry. Every number that places a pixel (sizes, sampling rates, filter taps, the
padding of each resampling step) is used as the pickle stores it rather than re-derived from
the constructor arguments, and checked for consistency: a fork that changed the schedule then
still renders what its own code renders, and a damaged one is refused with one line.

The forms are the export-friendly ones: the modulated convolution is the unfused one
(modulate the input, convolve, demodulate the output), and every resampling step is a
depthwise (transposed) convolution per axis, so the batch axis stays dynamic in ONNX.
Layers that NVIDIA's code runs in float16 on a GPU are computed in float32 here.

The mapping network and its dense layers are the same as StyleGAN2's and live with them in
``export.stylegan_layers``; ``export.stylegan3_design`` builds synthetic trees (with the real
filter design) for tests and benchmarks.

What is matched, learnt by reading NVlabs/stylegan3 (training/networks_stylegan3.py and the
reference paths of torch_utils/ops/filtered_lrelu.py, upfirdn2d.py, bias_act.py), and how it
is checked (tests/test_stylegan3.py unless said otherwise):

- Mapping: z, and the embedded label, each scaled to unit mean square (epsilon 1e-8) and
  concatenated; each layer x W^T * weight_gain + b * bias_gain (the pickled gains, i.e. the
  learning-rate multiplier over sqrt(fan-in)), leaky ReLU 0.2 times sqrt(2). Checked: ONNX
  parity, a label changes w.
- Input: t = affine(ws[:, 0]) divided by the norm of its first two entries; rotation
  [[t0, -t1], [t1, t0]] times translation (-t2, -t3) times the input transform (stored, or
  given per item); phases += freqs . m[:2, 2], freqs = freqs . m[:2, :2]; amplitude
  clamp(1 - (|f| - bandwidth) / (rate / 2 - bandwidth), 0, 1); features
  sin(2 pi (grid . f + phase)) * amplitude on pixel centres in units of the layer's rate
  (torch's affine_grid, as theirs), then times weight / sqrt(channels). Checked: config R
  turns exactly with a quarter-turn transform, both configs shift by a pixel with a
  1/R-translation, the identity given equals the stored transform.
- Modulated convolution: styles = affine(w); weights normalised by their RMS over (in, k, k)
  and styles by theirs, demodulated by rsqrt(sum (w s)^2 + 1e-8) per output channel, scaled by
  magnitude_ema^-1/2, padded by k - 1. ToRGB: styles times 1/sqrt(in * k^2), no demodulation.
- Filtered leaky ReLU: bias; zero-stuff by up_factor, pad or crop by the pickled padding
  [x0, x1, y0, y1], convolve with up_filter at gain up^2 (up per axis); leaky ReLU 0.2 times
  sqrt(2) (ToRGB: slope 1, gain 1); clamp to +-conv_clamp; convolve with down_filter (1-D
  separable, or 2-D radial), keep every down_factor-th sample; a missing (one-tap) filter is
  the identity. Checked: against a direct transcription of those steps (asymmetric taps, odd
  paddings), one tap equals bias + leaky ReLU + gain + clamp, and the equivariances above.
- Filter design (synthetic trees, ``export.stylegan3_design``): Kaiser-windowed sinc (scipy's
  firwin, Kaiser's beta and attenuation formulas) or, radial, a jinc under the outer product
  of that window; sum 1. Checked: against values from SciPy; the layer schedule against
  NVIDIA's FFHQ 1024 px T.
- Output: times output_scale; ws[:, i + 1] drives layer i, so num_ws = num_layers + 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.stylegan_generator import StyleGenerator
from export.stylegan_layers import (
    ACTIVATION_GAINS,
    EPSILON,
    LRELU_SLOPE,
    Dense,
    MappingNetwork,
    attribute,
    check_tensors,
    clamp_of,
    number,
    whole,
)
from export.stylegan_pickle import PickledModule
from installation.errors import UserError

# ----------------------------------------------------------------------------------------------
# Building blocks


class _Pass(nn.Module):
    """One depthwise filtering pass: along one axis (a separable filter) or both (2-D)."""

    def __init__(self, kernel: torch.Tensor, stride: tuple[int, int], transposed: bool) -> None:
        super().__init__()
        self.register_buffer("kernel", kernel)
        self.stride, self.transposed = stride, transposed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = self.kernel.shape[0]
        if self.transposed:
            return F.conv_transpose2d(x, self.kernel, stride=self.stride, groups=groups)
        return F.conv2d(x, self.kernel, stride=self.stride, groups=groups)


def _passes(
    taps: torch.Tensor | None, channels: int, factor: int, gain: float, transposed: bool
) -> tuple[list[_Pass], tuple[int, int]]:
    """The passes that filter with ``taps`` and change the rate by ``factor`` (an upsampling
    transposed convolution, or a decimating convolution), and the filter's (height, width).

    No filter (one tap) with a factor of 1 is the identity: no pass at all. A transposed
    convolution is the convolution of the zero-stuffed signal with the taps as they are; a
    forward convolution correlates, so it gets them flipped, to convolve as well.
    """
    if taps is None:
        if factor == 1:
            return [], (1, 1)
        taps = torch.ones(1)
    if not transposed:
        taps = taps.flip(list(range(taps.ndim)))
    if taps.ndim == 2:
        kernel = (taps * gain).expand(channels, 1, *taps.shape).contiguous()
        return [_Pass(kernel, (factor, factor), transposed)], (taps.shape[0], taps.shape[1])
    axis_taps = taps * math.sqrt(gain)
    size = axis_taps.shape[0]
    across = axis_taps.expand(channels, 1, 1, size).contiguous()
    down = axis_taps.reshape(size, 1).expand(channels, 1, size, 1).contiguous()
    return [_Pass(across, (1, factor), transposed), _Pass(down, (factor, 1), transposed)], (
        size,
        size,
    )


def _pad_or_crop(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Zero-pad where an amount is positive, crop where it is negative (static amounts)."""
    pads = [max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)]
    if any(pads):
        x = F.pad(x, pads)
    if min(left, right, top, bottom) >= 0:
        return x
    # Ends counted from the far side keep the graph free of shape arithmetic.
    rows = slice(max(-top, 0), bottom if bottom < 0 else None)
    columns = slice(max(-left, 0), right if right < 0 else None)
    return x[..., rows, columns]


class FilteredLeakyReLU(nn.Module):
    """Bias, upsample by ``up``, leaky ReLU (gain, clamp), low-pass, keep every ``down``-th.

    The nonlinearity makes frequencies above the band; running it at a temporarily higher
    rate and low-pass filtering before decimating keeps the signal band-limited (Alias-Free
    GAN, section 3.2). ``padding`` ([x before, x after, y before, y after]) is relative to the
    zero-stuffed signal; the upsampling filter has gain ``up**2`` so a constant keeps its
    level; the downsampling filter is applied at gain 1. ``slope`` 1 and ``gain`` 1 make the
    step linear (the ToRGB layer); ``clamp`` None leaves values unbounded.
    """

    def __init__(
        self,
        bias: torch.Tensor,
        up_filter: torch.Tensor | None,
        down_filter: torch.Tensor | None,
        up: int,
        down: int,
        padding: Sequence[int],
        gain: float,
        slope: float,
        clamp: float | None,
    ) -> None:
        super().__init__()
        channels = bias.shape[0]
        self.register_buffer("bias", bias.reshape(1, channels, 1, 1).clone())
        up_passes, (up_height, up_width) = _passes(up_filter, channels, up, up * up, True)
        down_passes, _ = _passes(down_filter, channels, down, 1.0, False)
        self.up_passes = nn.ModuleList(up_passes)
        self.down_passes = nn.ModuleList(down_passes)
        # A transposed convolution of n samples by `up` with k taps gives (n - 1) * up + k
        # samples; the stuffed, padded signal filtered with k taps starts k - 1 - pad_before
        # samples into that and ends up + pad_after - k samples past its end.
        x0, x1, y0, y1 = (int(value) for value in padding)
        self.crop = (
            x0 - (up_width - 1),
            up + x1 - up_width,
            y0 - (up_height - 1),
            up + y1 - up_height,
        )
        self.gain, self.slope, self.clamp = float(gain), float(slope), clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.bias
        for step in self.up_passes:
            x = step(x)
        x = _pad_or_crop(x, *self.crop)
        if self.slope != 1:
            x = F.leaky_relu(x, self.slope)
        if self.gain != 1:
            x = x * self.gain
        if self.clamp is not None:
            x = x.clamp(-self.clamp, self.clamp)
        for step in self.down_passes:
            x = step(x)
        return x


class FourierInput(nn.Module):
    """The first layer: Fourier features on a fixed grid, turned and shifted per w.

    Each channel is a sinusoid with a stored frequency and phase. The layer's affine turns w
    into a rotation and translation (a unit-length rotation part, the translation scaled with
    it); composed with the input transform, it moves the frequencies and phases rather than the
    grid, so the result stays band-limited. Frequencies pushed past the band by the transform
    fade out linearly between the bandwidth and half the sampling rate.
    """

    def __init__(
        self,
        affine: Dense,
        weight: torch.Tensor,
        freqs: torch.Tensor,
        phases: torch.Tensor,
        transform: torch.Tensor,
        size: tuple[int, int],
        sampling_rate: float,
        bandwidth: float,
    ) -> None:
        super().__init__()
        channels = weight.shape[0]
        self.affine = affine
        self.register_buffer("weight", weight / np.sqrt(channels))
        self.register_buffer("freqs", freqs.clone())
        self.register_buffer("phases", phases.clone())
        self.register_buffer("transform", transform.clone())
        width, height = size
        # Pixel centres in units of the layer's sampling period, centred on the image.
        theta = torch.eye(2, 3)
        theta[0, 0] = 0.5 * width / sampling_rate
        theta[1, 1] = 0.5 * height / sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)
        self.register_buffer("grid", grid.reshape(height * width, 2))
        self.size, self.channels = (width, height), channels
        self.bandwidth, self.fade = float(bandwidth), float(sampling_rate / 2 - bandwidth)

    def forward(self, w: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, shift_x, shift_y = t.unbind(dim=1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        rotation = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1)
        translation = torch.stack([one, zero, -shift_x, zero, one, -shift_y, zero, zero, one], 1)
        matrix = rotation.reshape(-1, 3, 3) @ translation.reshape(-1, 3, 3) @ transform
        phases = self.phases + (self.freqs @ matrix[:, :2, 2:]).squeeze(2)
        freqs = self.freqs @ matrix[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / self.fade).clamp(0, 1)
        x = self.grid @ freqs.transpose(1, 2)
        x = torch.sin((x + phases.unsqueeze(1)) * (np.pi * 2)) * amplitudes.unsqueeze(1)
        x = x @ self.weight.t()
        width, height = self.size
        return x.transpose(1, 2).reshape(-1, self.channels, height, width)


class SynthesisLayer(nn.Module):
    """Modulated convolution, then the filtered leaky ReLU; the last one is the ToRGB layer.

    The style from w scales the input channels; the weights are demodulated (each output
    channel's effective weights at unit norm) except in ToRGB, whose styles are scaled by
    1/sqrt(fan-in) instead and whose nonlinearity is linear. The input is scaled by
    1/sqrt(magnitude_ema), the mean square seen in training. The convolution pads by
    kernel - 1 on each side: the map grows and the resampling's padding crops it.
    """

    def __init__(
        self,
        affine: Dense,
        weight: torch.Tensor,
        magnitude_ema: torch.Tensor,
        activation: FilteredLeakyReLU,
        is_torgb: bool,
    ) -> None:
        super().__init__()
        self.affine = affine
        self.is_torgb = is_torgb
        _, in_channels, kernel, _ = weight.shape
        self.padding = kernel - 1
        if is_torgb:
            self.style_gain = 1 / np.sqrt(in_channels * kernel**2)
        else:
            # Demodulation makes the output independent of the weight's and style's scale;
            # normalising both first keeps the float32 sums in range.
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            self.register_buffer("weight_power", weight.square().sum(dim=[2, 3]))
        self.register_buffer("weight", weight.clone())
        self.input_gain = float(magnitude_ema.rsqrt())
        self.activation = activation

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * self.style_gain
            x = F.conv2d(x * styles[:, :, None, None], self.weight, padding=self.padding)
            return self.activation(x * self.input_gain)
        # Normalised per item: NVIDIA's code normalises over the whole batch, which changes
        # nothing but the 1e-8 below, and would make an item depend on its batch.
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
        demodulation = (styles.square() @ self.weight_power.t() + EPSILON).rsqrt()
        x = F.conv2d(x * styles[:, :, None, None], self.weight, padding=self.padding)
        return self.activation(x * (demodulation * self.input_gain)[:, :, None, None])


class StyleGAN3Generator(StyleGenerator):
    """The whole generator: ``ws[:, 0]`` drives the Fourier input, ``ws[:, i + 1]`` layer i."""

    def __init__(
        self,
        sizes: dict[str, int],
        mapping: MappingNetwork,
        fourier: FourierInput,
        layers: Sequence[SynthesisLayer],
        output_scale: float,
        w_avg: torch.Tensor,
    ) -> None:
        super().__init__(**sizes)
        self.mapping = mapping
        self.fourier = fourier
        self.layers = nn.ModuleList(layers)
        self.output_scale = float(output_scale)
        self.w_avg.copy_(w_avg)
        self.transform = fourier.transform.clone()

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mapping(z, c)

    def synthesize(self, ws: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        if transform is None:
            transform = self.fourier.transform.unsqueeze(0)
        x = self.fourier(ws[:, 0], transform)
        for index, layer in enumerate(self.layers):
            x = layer(x, ws[:, index + 1])
        return x * self.output_scale if self.output_scale != 1 else x


# ----------------------------------------------------------------------------------------------
# From a pickled tree


def build(net: PickledModule) -> StyleGenerator:
    """Our generator for a StyleGAN3 ``G_ema``, weights copied, ready for inference.

    Raises ``UserError`` (one line naming the attribute or dotted tensor) when the tree is not
    a StyleGAN3 generator of a consistent layout.
    """
    mapping_net = _child(net, "mapping", "")
    synthesis_net = _child(net, "synthesis", "")
    input_net = _child(synthesis_net, "input", "synthesis")
    z_dim, c_dim, w_dim = (whole(net, "generator", name) for name in ("z_dim", "c_dim", "w_dim"))
    img_resolution, img_channels = (
        whole(net, "generator", "img_resolution"),
        whole(net, "generator", "img_channels"),
    )
    layer_names = attribute(synthesis_net, "synthesis", "layer_names")
    if not isinstance(layer_names, list | tuple) or not all(
        isinstance(name, str) and name in synthesis_net.children for name in layer_names
    ):
        raise UserError(
            f"synthesis.layer_names is {layer_names!r}, expected the names of its layers"
        )
    num_ws = whole(synthesis_net, "synthesis", "num_ws")
    if num_ws != len(layer_names) + 1:
        raise UserError(
            f"StyleGAN3 synthesis.num_ws is {num_ws}, but synthesis has {len(layer_names)} layers "
            f"(num_ws must be layers + 1: one w for the input, one per layer)"
        )
    mapping_layers = whole(mapping_net, "mapping", "num_layers")
    layers = [_layer_geometry(synthesis_net, name) for name in layer_names]
    _check_chain(input_net, layers, img_resolution, img_channels)

    expected = _expected_shapes(
        z_dim, c_dim, w_dim, mapping_layers, whole(input_net, "synthesis.input", "channels"), layers
    )
    tensors = net.tensors()
    check_tensors(tensors, expected, "StyleGAN3")

    def dense(prefix: str) -> Dense:
        return Dense(_descendant(net, prefix), prefix)

    mapping = MappingNetwork(mapping_net, "mapping", z_dim, c_dim, mapping_layers)
    sampling_rate = number(input_net, "synthesis.input", "sampling_rate")
    bandwidth = number(input_net, "synthesis.input", "bandwidth")
    if not sampling_rate / 2 > bandwidth >= 0:
        raise UserError(
            f"synthesis.input: sampling_rate {sampling_rate:g} and bandwidth {bandwidth:g}; "
            "the rate must be more than twice the bandwidth"
        )
    fourier = FourierInput(
        dense("synthesis.input.affine"),
        tensors["synthesis.input.weight"],
        tensors["synthesis.input.freqs"],
        tensors["synthesis.input.phases"],
        tensors["synthesis.input.transform"],
        _pair(input_net, "size", "synthesis.input"),
        sampling_rate,
        bandwidth,
    )
    synthesis_layers = []
    for layer in layers:
        prefix = f"synthesis.{layer.name}"
        activation = FilteredLeakyReLU(
            tensors[f"{prefix}.bias"],
            tensors.get(f"{prefix}.up_filter"),
            tensors.get(f"{prefix}.down_filter"),
            layer.up_factor,
            layer.down_factor,
            layer.padding,
            gain=1.0 if layer.is_torgb else ACTIVATION_GAINS["lrelu"],
            slope=1.0 if layer.is_torgb else LRELU_SLOPE,
            clamp=layer.conv_clamp,
        )
        synthesis_layers.append(
            SynthesisLayer(
                dense(f"{prefix}.affine"),
                tensors[f"{prefix}.weight"],
                tensors[f"{prefix}.magnitude_ema"],
                activation,
                layer.is_torgb,
            )
        )
    sizes = dict(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        num_ws=num_ws,
        img_resolution=img_resolution,
        img_channels=img_channels,
    )
    generator = StyleGAN3Generator(
        sizes,
        mapping,
        fourier,
        synthesis_layers,
        number(synthesis_net, "synthesis", "output_scale"),
        tensors["mapping.w_avg"],
    )
    return generator.eval()


@dataclass(frozen=True)
class _Geometry:
    """One synthesis layer's pickled layout, as plain numbers."""

    name: str
    is_torgb: bool
    in_channels: int
    out_channels: int
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]
    conv_clamp: float | None


def _layer_geometry(synthesis: PickledModule, name: str) -> _Geometry:
    where = f"synthesis.{name}"
    layer = _child(synthesis, name, "synthesis")
    value = attribute(layer, where, "padding")
    try:
        padding = tuple(int(item) for item in np.asarray(value, dtype=np.int64).reshape(-1))
    except (TypeError, ValueError):
        padding = ()
    if len(padding) != 4:
        raise UserError(f"StyleGAN3 {where}.padding is {value!r}, expected 4 whole numbers")
    return _Geometry(
        name=name,
        is_torgb=bool(attribute(layer, where, "is_torgb")),
        in_channels=whole(layer, where, "in_channels"),
        out_channels=whole(layer, where, "out_channels"),
        in_size=_pair(layer, "in_size", where),
        out_size=_pair(layer, "out_size", where),
        conv_kernel=whole(layer, where, "conv_kernel"),
        up_factor=whole(layer, where, "up_factor", least=1),
        down_factor=whole(layer, where, "down_factor", least=1),
        up_taps=whole(layer, where, "up_taps"),
        down_taps=whole(layer, where, "down_taps"),
        down_radial=bool(attribute(layer, where, "down_radial")),
        padding=padding,  # type: ignore[arg-type]
        conv_clamp=clamp_of(layer, where),
    )


def _check_chain(
    input_net: PickledModule, layers: Sequence[_Geometry], img_resolution: int, img_channels: int
) -> None:
    """Each layer must take what the previous one gives, resample to its stated size, and the
    last must be the ToRGB layer at the image's size: otherwise the pickle contradicts itself."""
    if not layers or not layers[-1].is_torgb or any(layer.is_torgb for layer in layers[:-1]):
        raise UserError("StyleGAN3 synthesis: the last layer, and only it, must be the ToRGB layer")
    channels = whole(input_net, "synthesis.input", "channels")
    size = _pair(input_net, "size", "synthesis.input")
    for layer in layers:
        where = f"synthesis.{layer.name}"
        if layer.in_channels != channels or layer.in_size != size:
            raise UserError(
                f"StyleGAN3 {where} takes {layer.in_channels} channels at {list(layer.in_size)}, "
                f"but the layer before gives {channels} at {list(size)}"
            )
        x0, x1, y0, y1 = layer.padding
        made = tuple(
            (
                (inside + layer.conv_kernel - 1) * layer.up_factor
                + before
                + after
                - (layer.up_taps - 1)
                - (layer.down_taps - 1)
                + layer.down_factor
                - 1
            )
            // layer.down_factor
            for inside, before, after in zip(layer.in_size, (x0, y0), (x1, y1), strict=True)
        )
        if made != layer.out_size:
            raise UserError(
                f"StyleGAN3 {where}.padding {list(layer.padding)} gives {list(made)} pixels, "
                f"but out_size is {list(layer.out_size)}"
            )
        channels, size = layer.out_channels, layer.out_size
    if channels != img_channels or size != (img_resolution, img_resolution):
        raise UserError(
            f"StyleGAN3 synthesis ends with {channels} channels at {list(size)}, but the "
            f"generator states {img_channels} at {img_resolution}x{img_resolution}"
        )


def _expected_shapes(
    z_dim: int,
    c_dim: int,
    w_dim: int,
    mapping_layers: int,
    input_channels: int,
    layers: Sequence[_Geometry],
) -> dict[str, tuple[int, ...]]:
    """Every tensor a StyleGAN3 generator of this layout has, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    width = z_dim
    if c_dim > 0:
        shapes |= {"mapping.embed.weight": (w_dim, c_dim), "mapping.embed.bias": (w_dim,)}
        width += w_dim
    for index in range(mapping_layers):
        shapes |= {f"mapping.fc{index}.weight": (w_dim, width), f"mapping.fc{index}.bias": (w_dim,)}
        width = w_dim
    shapes["mapping.w_avg"] = (w_dim,)
    shapes |= {
        "synthesis.input.weight": (input_channels, input_channels),
        "synthesis.input.affine.weight": (4, w_dim),
        "synthesis.input.affine.bias": (4,),
        "synthesis.input.transform": (3, 3),
        "synthesis.input.freqs": (input_channels, 2),
        "synthesis.input.phases": (input_channels,),
    }
    for layer in layers:
        prefix = f"synthesis.{layer.name}"
        kernel = layer.conv_kernel
        shapes |= {
            f"{prefix}.affine.weight": (layer.in_channels, w_dim),
            f"{prefix}.affine.bias": (layer.in_channels,),
            f"{prefix}.weight": (layer.out_channels, layer.in_channels, kernel, kernel),
            f"{prefix}.bias": (layer.out_channels,),
            f"{prefix}.magnitude_ema": (),
        }
        if layer.up_taps > 1:
            shapes[f"{prefix}.up_filter"] = (layer.up_taps,)
        if layer.down_taps > 1:
            taps = layer.down_taps
            shapes[f"{prefix}.down_filter"] = (taps, taps) if layer.down_radial else (taps,)
    return shapes


def _child(module: PickledModule, name: str, where: str) -> PickledModule:
    if name not in module.children:
        found = ", ".join(module.children) or "none"
        place = f"{where}.{name}" if where else name
        raise UserError(f"StyleGAN3 network {place} is missing (children found: {found})")
    return module.children[name]


def _descendant(module: PickledModule, dotted: str) -> PickledModule:
    for name in dotted.split("."):
        module = module.children[name]
    return module


def _pair(module: PickledModule, name: str, where: str) -> tuple[int, int]:
    """A size as [width, height]; StyleGAN3 stores sizes as numpy pairs, a single int is square."""
    value = attribute(module, where, name)
    try:
        values = np.broadcast_to(np.asarray(value, dtype=np.int64), [2])
    except (TypeError, ValueError):
        raise UserError(
            f"StyleGAN3 attribute {where}.{name} is {value!r}, expected a size"
        ) from None
    return int(values[0]), int(values[1])
