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

``synthetic`` builds the tree NVIDIA's constructor would pickle for a configuration (with its
real filter design) and random weights: what the tests and benchmarks use instead of a real
snapshot, which is never downloaded.

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
- Filter design (synthetic trees): Kaiser-windowed sinc (scipy's firwin, Kaiser's beta and
  attenuation formulas) or, radial, a jinc under the outer product of that window; sum 1.
  Checked: against values from SciPy; the layer schedule against NVIDIA's FFHQ 1024 px T.
- Output: times output_scale; ws[:, i + 1] drives layer i, so num_ws = num_layers + 2.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.stylegan_generator import StyleGenerator
from export.stylegan_pickle import PickledModule
from installation.errors import UserError

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
"""Leaky ReLU as StyleGAN uses it: the gain keeps the signal's magnitude through the layer."""

SYNTHETIC_MODULE_SRC = '"""Stand-in for training/networks_stylegan3.py in synthetic pickles."""\n'
"""What a synthetic tree claims as its classes' source: only its sha256 is recorded."""


# ----------------------------------------------------------------------------------------------
# Building blocks


class Dense(nn.Module):
    """A fully connected layer with the weight and bias gains of the pickle folded in.

    StyleGAN stores raw weights and scales them at run time (equalised learning rate);
    scaling once here gives the same float32 values the scaled product would.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        weight_gain: float,
        bias_gain: float,
        lrelu: bool,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight * weight_gain)
        self.register_buffer("bias", bias * bias_gain if bias_gain != 1 else bias.clone())
        self.lrelu = lrelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight, self.bias)
        return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN if self.lrelu else x


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """Scale each row to unit mean square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """z (and an embedded class label) -> w: normalised inputs through leaky-ReLU layers."""

    def __init__(self, embed: Dense | None, layers: Sequence[Dense]) -> None:
        super().__init__()
        self.embed = embed
        self.layers = nn.ModuleList(layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        x = _normalize(z)
        if self.embed is not None:
            if c is None:
                raise ValueError("this StyleGAN3 is conditional: map() needs the label c")
            x = torch.cat([x, _normalize(self.embed(c))], dim=1)
        for layer in self.layers:
            x = layer(x)
        return x


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
        demodulation = (styles.square() @ self.weight_power.t() + 1e-8).rsqrt()
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
    z_dim, c_dim, w_dim = (_int(net, name, "") for name in ("z_dim", "c_dim", "w_dim"))
    img_resolution, img_channels = _int(net, "img_resolution", ""), _int(net, "img_channels", "")
    layer_names = [str(name) for name in _attribute(synthesis_net, "layer_names", "synthesis")]
    num_ws = _int(synthesis_net, "num_ws", "synthesis")
    if num_ws != len(layer_names) + 1:
        raise UserError(
            f"StyleGAN3 synthesis.num_ws is {num_ws}, but synthesis has {len(layer_names)} layers "
            f"(num_ws must be layers + 1: one w for the input, one per layer)"
        )
    mapping_layers = _int(mapping_net, "num_layers", "mapping")
    layers = [_layer_geometry(synthesis_net, name) for name in layer_names]
    _check_chain(input_net, layers, img_resolution, img_channels)

    expected = _expected_shapes(
        z_dim, c_dim, w_dim, mapping_layers, _int(input_net, "channels", "synthesis.input"), layers
    )
    tensors = net.tensors()
    _check_tensors(tensors, expected)

    def dense(prefix: str, lrelu: bool) -> Dense:
        module = _descendant(net, prefix)
        return Dense(
            tensors[f"{prefix}.weight"],
            tensors[f"{prefix}.bias"],
            _float(module, "weight_gain", prefix),
            _float(module, "bias_gain", prefix),
            lrelu,
        )

    embed = dense("mapping.embed", lrelu=False) if c_dim > 0 else None
    mapping = MappingNetwork(embed, [dense(f"mapping.fc{i}", True) for i in range(mapping_layers)])
    fourier = FourierInput(
        dense("synthesis.input.affine", lrelu=False),
        tensors["synthesis.input.weight"],
        tensors["synthesis.input.freqs"],
        tensors["synthesis.input.phases"],
        tensors["synthesis.input.transform"],
        _pair(input_net, "size", "synthesis.input"),
        _float(input_net, "sampling_rate", "synthesis.input"),
        _float(input_net, "bandwidth", "synthesis.input"),
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
            gain=1.0 if layer.is_torgb else LRELU_GAIN,
            slope=1.0 if layer.is_torgb else LRELU_SLOPE,
            clamp=layer.conv_clamp,
        )
        synthesis_layers.append(
            SynthesisLayer(
                dense(f"{prefix}.affine", lrelu=False),
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
        _float(synthesis_net, "output_scale", "synthesis"),
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
    value = _attribute(layer, "padding", where)
    try:
        padding = tuple(int(item) for item in np.asarray(value, dtype=np.int64).reshape(-1))
    except (TypeError, ValueError):
        padding = ()
    if len(padding) != 4:
        raise UserError(f"StyleGAN3 {where}.padding is {value!r}, expected 4 whole numbers")
    clamp = _attribute(layer, "conv_clamp", where)
    return _Geometry(
        name=name,
        is_torgb=bool(_attribute(layer, "is_torgb", where)),
        in_channels=_int(layer, "in_channels", where),
        out_channels=_int(layer, "out_channels", where),
        in_size=_pair(layer, "in_size", where),
        out_size=_pair(layer, "out_size", where),
        conv_kernel=_int(layer, "conv_kernel", where),
        up_factor=_int(layer, "up_factor", where),
        down_factor=_int(layer, "down_factor", where),
        up_taps=_int(layer, "up_taps", where),
        down_taps=_int(layer, "down_taps", where),
        down_radial=bool(_attribute(layer, "down_radial", where)),
        padding=padding,  # type: ignore[arg-type]
        conv_clamp=None if clamp is None else float(clamp),
    )


def _check_chain(
    input_net: PickledModule, layers: Sequence[_Geometry], img_resolution: int, img_channels: int
) -> None:
    """Each layer must take what the previous one gives, resample to its stated size, and the
    last must be the ToRGB layer at the image's size: otherwise the pickle contradicts itself."""
    if not layers or not layers[-1].is_torgb or any(layer.is_torgb for layer in layers[:-1]):
        raise UserError("StyleGAN3 synthesis: the last layer, and only it, must be the ToRGB layer")
    channels = _int(input_net, "channels", "synthesis.input")
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


def _check_tensors(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    for name, shape in expected.items():
        if name not in tensors:
            raise UserError(f"StyleGAN3 tensor {name} is missing (expected shape {list(shape)})")
        found = tuple(tensors[name].shape)
        if found != shape:
            raise UserError(
                f"StyleGAN3 tensor {name} has shape {list(found)}, expected {list(shape)}"
            )
    for name, tensor in tensors.items():
        if name not in expected:
            raise UserError(
                f"StyleGAN3 tensor {name} {list(tensor.shape)} is not part of this layout"
            )


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


def _attribute(module: PickledModule, name: str, where: str) -> Any:
    if name not in module.attributes:
        place = f"{where}.{name}" if where else name
        raise UserError(f"StyleGAN3 attribute {place} is missing from the pickle")
    return module.attributes[name]


def _int(module: PickledModule, name: str, where: str) -> int:
    return int(_number(module, name, where))


def _float(module: PickledModule, name: str, where: str) -> float:
    return float(_number(module, name, where))


def _number(module: PickledModule, name: str, where: str) -> float:
    """A numeric attribute (pickles hold Python or numpy numbers), refused with one line if not."""
    value = _attribute(module, name, where)
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        place = f"{where}.{name}" if where else name
        raise UserError(f"StyleGAN3 attribute {place} is {value!r}, expected a number")
    return value


def _pair(module: PickledModule, name: str, where: str) -> tuple[int, int]:
    """A size as [width, height]; StyleGAN3 stores sizes as numpy pairs, a single int is square."""
    value = _attribute(module, name, where)
    try:
        values = np.broadcast_to(np.asarray(value, dtype=np.int64), [2])
    except (TypeError, ValueError):
        raise UserError(
            f"StyleGAN3 attribute {where}.{name} is {value!r}, expected a size"
        ) from None
    return int(values[0]), int(values[1])


# ----------------------------------------------------------------------------------------------
# Synthetic trees


def small_config(variant: str = "T", resolution: int = 32) -> dict[str, Any]:
    """Generator constructor arguments for a tiny StyleGAN3-T or -R, as a training run would
    record them (R doubles the widths and uses 1x1 convolutions and radial filters)."""
    if variant not in ("T", "R"):
        raise ValueError(f"variant must be 'T' or 'R', got {variant!r}")
    config: dict[str, Any] = dict(
        z_dim=32,
        w_dim=32,
        mapping_kwargs=dict(num_layers=2),
        channel_base=512,
        channel_max=16,
        num_layers=4,
        magnitude_ema_beta=0.999,
        c_dim=0,
        img_resolution=resolution,
        img_channels=3,
    )
    if variant == "R":
        config.update(conv_kernel=1, channel_base=1024, channel_max=32, use_radial_filters=True)
    return config


_SYNTHESIS_DEFAULTS: dict[str, Any] = dict(
    channel_base=32768,
    channel_max=512,
    num_layers=14,
    num_critical=2,
    first_cutoff=2,
    first_stopband=2**2.1,
    last_stopband_rel=2**0.3,
    margin_size=10,
    output_scale=0.25,
    num_fp16_res=4,
)
_LAYER_DEFAULTS: dict[str, Any] = dict(
    conv_kernel=3,
    filter_size=6,
    lrelu_upsampling=2,
    use_radial_filters=False,
    conv_clamp=256,
    magnitude_ema_beta=0.999,
)
_MAPPING_DEFAULTS: dict[str, Any] = dict(num_layers=2, lr_multiplier=0.01, w_avg_beta=0.998)
_GENERATOR_KEYS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")


def synthetic(config: dict[str, Any], seed: int) -> PickledModule:
    """The ``G_ema`` tree NVIDIA's StyleGAN3 constructor would pickle for ``config`` (its
    Generator keyword arguments), with random weights drawn from ``seed``.

    Attributes, constructor arguments and numpy types are as their constructor sets them,
    the resampling filters are designed as theirs are (Kaiser-windowed sinc, jinc for radial
    ones); the weights are random but at trained-like scales (non-zero biases, an input
    affine that turns and shifts), the stored transform is the identity and magnitude_ema 1.
    """
    generator = torch.Generator().manual_seed(seed)
    sha = hashlib.sha256(SYNTHETIC_MODULE_SRC.encode()).hexdigest()
    synthesis_kwargs = {k: v for k, v in config.items() if k not in _GENERATOR_KEYS}
    unknown = set(synthesis_kwargs) - set(_SYNTHESIS_DEFAULTS) - set(_LAYER_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown StyleGAN3 arguments: {sorted(unknown)}")
    z_dim, c_dim, w_dim = config["z_dim"], config["c_dim"], config["w_dim"]
    resolution, img_channels = config["img_resolution"], config["img_channels"]
    synthesis = _synthetic_synthesis(
        dict(w_dim=w_dim, img_resolution=resolution, img_channels=img_channels, **synthesis_kwargs),
        generator,
        sha,
    )
    num_ws = synthesis.attributes["num_ws"]
    mapping = _synthetic_mapping(
        dict(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, **config.get("mapping_kwargs", {})
        ),
        generator,
        sha,
    )
    return PickledModule(
        class_name="Generator",
        init_kwargs=dict(config),
        attributes=dict(
            z_dim=z_dim,
            c_dim=c_dim,
            w_dim=w_dim,
            img_resolution=resolution,
            img_channels=img_channels,
            num_ws=num_ws,
        ),
        parameters={},
        buffers={},
        children={"synthesis": synthesis, "mapping": mapping},
        source_sha256=sha,
    )


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=generator)


def _synthetic_dense(
    in_features: int,
    out_features: int,
    generator: torch.Generator,
    sha: str,
    init_kwargs: dict[str, Any],
    activation: str = "linear",
    lr_multiplier: float = 1.0,
    bias_init: Sequence[float] | float = 0.0,
    weight_scale: float = 1.0,
) -> PickledModule:
    """A FullyConnectedLayer; weights stored divided by the learning-rate multiplier, as the
    equalised learning rate keeps them."""
    weight = _randn(generator, out_features, in_features) * (weight_scale / lr_multiplier)
    bias = torch.tensor(np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]))
    bias = (bias + 0.1 * _randn(generator, out_features)) / lr_multiplier
    return PickledModule(
        class_name="FullyConnectedLayer",
        init_kwargs=init_kwargs,
        attributes=dict(
            in_features=in_features,
            out_features=out_features,
            activation=activation,
            weight_gain=lr_multiplier / np.sqrt(in_features),
            bias_gain=lr_multiplier,
        ),
        parameters={"weight": weight, "bias": bias},
        buffers={},
        children={},
        source_sha256=sha,
        init_args=(in_features, out_features),
    )


def _synthetic_mapping(
    kwargs: dict[str, Any], generator: torch.Generator, sha: str
) -> PickledModule:
    options = {**_MAPPING_DEFAULTS, **kwargs}
    z_dim, c_dim, w_dim = options["z_dim"], options["c_dim"], options["w_dim"]
    num_layers, lr_multiplier = options["num_layers"], options["lr_multiplier"]
    children: dict[str, PickledModule] = {}
    attributes: dict[str, Any] = dict(
        z_dim=z_dim,
        c_dim=c_dim,
        w_dim=w_dim,
        num_ws=options["num_ws"],
        num_layers=num_layers,
        w_avg_beta=options["w_avg_beta"],
        trainable_layers=num_layers,
    )
    if c_dim > 0:
        children["embed"] = _synthetic_dense(c_dim, w_dim, generator, sha, dict(trainable=True))
    else:
        attributes["embed"] = None
    width = z_dim + (w_dim if c_dim > 0 else 0)
    for index in range(num_layers):
        children[f"fc{index}"] = _synthetic_dense(
            width,
            w_dim,
            generator,
            sha,
            dict(activation="lrelu", lr_multiplier=lr_multiplier, trainable=True),
            activation="lrelu",
            lr_multiplier=lr_multiplier,
        )
        width = w_dim
    return PickledModule(
        class_name="MappingNetwork",
        init_kwargs=kwargs,
        attributes=attributes,
        parameters={},
        buffers={"w_avg": _randn(generator, w_dim) * 0.5},
        children=children,
        source_sha256=sha,
    )


def _synthetic_synthesis(
    kwargs: dict[str, Any], generator: torch.Generator, sha: str
) -> PickledModule:
    """The SynthesisNetwork: the schedule of cutoffs, stopbands, sampling rates, sizes and
    widths of the Alias-Free GAN paper (its appendix F), then each layer's resampling."""
    options = {**_SYNTHESIS_DEFAULTS, **_LAYER_DEFAULTS, **kwargs}
    layer_options = {key: value for key, value in kwargs.items() if key in _LAYER_DEFAULTS}
    w_dim, resolution = options["w_dim"], options["img_resolution"]
    num_layers, num_critical = options["num_layers"], options["num_critical"]

    # Cutoffs and stopbands rise geometrically until the critically sampled layers at the end.
    last_cutoff = resolution / 2
    last_stopband = last_cutoff * options["last_stopband_rel"]
    progress = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    first_cutoff, first_stopband = options["first_cutoff"], options["first_stopband"]
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** progress
    stopbands = first_stopband * (last_stopband / first_stopband) ** progress
    # The smallest power-of-two rate that holds the stopband, at most the image's.
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + options["margin_size"] * 2
    sizes[-2:] = resolution
    widths = np.rint(np.minimum((options["channel_base"] / 2) / cutoffs, options["channel_max"]))
    widths[-1] = options["img_channels"]

    children: dict[str, PickledModule] = {
        "input": _synthetic_input(
            dict(
                w_dim=w_dim,
                channels=int(widths[0]),
                size=int(sizes[0]),
                sampling_rate=rates[0],
                bandwidth=cutoffs[0],
            ),
            generator,
            sha,
        )
    }
    names = []
    for index in range(num_layers + 1):
        before = max(index - 1, 0)
        layer_kwargs = dict(
            w_dim=w_dim,
            is_torgb=index == num_layers,
            is_critically_sampled=index >= num_layers - num_critical,
            use_fp16=rates[index] * (2 ** options["num_fp16_res"]) > resolution,
            in_channels=int(widths[before]),
            out_channels=int(widths[index]),
            in_size=int(sizes[before]),
            out_size=int(sizes[index]),
            in_sampling_rate=int(rates[before]),
            out_sampling_rate=int(rates[index]),
            in_cutoff=cutoffs[before],
            out_cutoff=cutoffs[index],
            in_half_width=half_widths[before],
            out_half_width=half_widths[index],
            **layer_options,
        )
        layer = _synthetic_layer(layer_kwargs, generator, sha)
        name = f"L{index}_{int(sizes[index])}_{int(widths[index])}"
        children[name] = layer
        names.append(name)
    return PickledModule(
        class_name="SynthesisNetwork",
        init_kwargs=kwargs,
        attributes=dict(
            w_dim=w_dim,
            num_ws=num_layers + 2,
            img_resolution=resolution,
            img_channels=options["img_channels"],
            num_layers=num_layers,
            num_critical=num_critical,
            margin_size=options["margin_size"],
            output_scale=options["output_scale"],
            num_fp16_res=options["num_fp16_res"],
            layer_names=names,
        ),
        parameters={},
        buffers={},
        children=children,
        source_sha256=sha,
    )


def _synthetic_input(kwargs: dict[str, Any], generator: torch.Generator, sha: str) -> PickledModule:
    """Fourier features with frequencies drawn uniformly inside the disc of the first cutoff."""
    channels, bandwidth = kwargs["channels"], kwargs["bandwidth"]
    radii = bandwidth * torch.rand(channels, generator=generator).sqrt()
    angles = torch.rand(channels, generator=generator) * (2 * np.pi)
    freqs = torch.stack([radii * angles.cos(), radii * angles.sin()], dim=1)
    phases = torch.rand(channels, generator=generator) - 0.5
    affine = _synthetic_dense(
        kwargs["w_dim"],
        4,
        generator,
        sha,
        dict(weight_init=0, bias_init=[1, 0, 0, 0]),
        bias_init=[1, 0, 0, 0],
        weight_scale=0.05,
    )
    return PickledModule(
        class_name="SynthesisInput",
        init_kwargs=kwargs,
        attributes=dict(
            w_dim=kwargs["w_dim"],
            channels=channels,
            size=np.broadcast_to(np.asarray(kwargs["size"]), [2]).copy(),
            sampling_rate=kwargs["sampling_rate"],
            bandwidth=bandwidth,
        ),
        parameters={"weight": _randn(generator, channels, channels)},
        buffers={"transform": torch.eye(3), "freqs": freqs, "phases": phases},
        children={"affine": affine},
        source_sha256=sha,
    )


def _synthetic_layer(kwargs: dict[str, Any], generator: torch.Generator, sha: str) -> PickledModule:
    """A SynthesisLayer: rates, resampling factors, designed filters and the padding that
    centres the output samples (the symmetric interpretation of the paper's appendix C.3)."""
    options = {**_LAYER_DEFAULTS, **kwargs}
    is_torgb = options["is_torgb"]
    in_rate, out_rate = options["in_sampling_rate"], options["out_sampling_rate"]
    temporary_rate = max(in_rate, out_rate) * (1 if is_torgb else options["lrelu_upsampling"])
    conv_kernel = 1 if is_torgb else options["conv_kernel"]
    up = int(np.rint(temporary_rate / in_rate))
    down = int(np.rint(temporary_rate / out_rate))
    up_taps = options["filter_size"] * up if up > 1 and not is_torgb else 1
    down_taps = options["filter_size"] * down if down > 1 and not is_torgb else 1
    down_radial = options["use_radial_filters"] and not options["is_critically_sampled"]
    in_size = np.broadcast_to(np.asarray(options["in_size"]), [2]).copy()
    out_size = np.broadcast_to(np.asarray(options["out_size"]), [2]).copy()
    # Samples needed before decimation, minus what the upsampled convolution output holds,
    # plus what the two filters consume; the extra `up` shifts the split to centre samples.
    total = (out_size - 1) * down + 1 - (in_size + conv_kernel - 1) * up + up_taps + down_taps - 2
    before = (total + up) // 2
    after = total - before
    buffers = {"magnitude_ema": torch.ones([])}
    up_filter = design_lowpass_filter(
        up_taps, options["in_cutoff"], options["in_half_width"] * 2, temporary_rate
    )
    down_filter = design_lowpass_filter(
        down_taps, options["out_cutoff"], options["out_half_width"] * 2, temporary_rate, down_radial
    )
    for name, taps in (("up_filter", up_filter), ("down_filter", down_filter)):
        if taps is not None:
            buffers[name] = torch.from_numpy(taps)
    in_channels, out_channels = options["in_channels"], options["out_channels"]
    affine = _synthetic_dense(
        options["w_dim"], in_channels, generator, sha, dict(bias_init=1), bias_init=1.0
    )
    return PickledModule(
        class_name="SynthesisLayer",
        init_kwargs=kwargs,
        attributes=dict(
            w_dim=options["w_dim"],
            is_torgb=is_torgb,
            is_critically_sampled=options["is_critically_sampled"],
            use_fp16=options["use_fp16"],
            in_channels=in_channels,
            out_channels=out_channels,
            in_size=in_size,
            out_size=out_size,
            in_sampling_rate=in_rate,
            out_sampling_rate=out_rate,
            tmp_sampling_rate=temporary_rate,
            in_cutoff=options["in_cutoff"],
            out_cutoff=options["out_cutoff"],
            in_half_width=options["in_half_width"],
            out_half_width=options["out_half_width"],
            conv_kernel=conv_kernel,
            conv_clamp=options["conv_clamp"],
            magnitude_ema_beta=options["magnitude_ema_beta"],
            up_factor=up,
            up_taps=up_taps,
            down_factor=down,
            down_taps=down_taps,
            down_radial=down_radial,
            padding=[int(before[0]), int(after[0]), int(before[1]), int(after[1])],
        ),
        parameters={
            "weight": _randn(generator, out_channels, in_channels, conv_kernel, conv_kernel),
            "bias": _randn(generator, out_channels) * 0.1,
        },
        buffers=buffers,
        children={"affine": affine},
        source_sha256=sha,
    )


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> np.ndarray | None:
    """A linear-phase low-pass FIR filter, float32, summing to 1; None for a single tap.

    The ideal response (a sinc, or for a radially symmetric 2-D filter a jinc: the Fourier
    transform of a disc) is shaped by a Kaiser window whose beta comes from Kaiser's empirical
    formulas for a transition band ``width`` wide (all frequencies in the units of ``fs``).
    """
    if numtaps == 1:
        return None
    nyquist = fs / 2
    window = np.kaiser(numtaps, _kaiser_beta(_kaiser_attenuation(numtaps, width / nyquist)))
    offsets = np.arange(numtaps) - (numtaps - 1) / 2
    if not radial:
        relative = cutoff / nyquist
        taps = relative * np.sinc(relative * offsets) * window
    else:
        radius = np.hypot(*np.meshgrid(offsets / fs, offsets / fs))
        argument = torch.from_numpy(2 * np.pi * cutoff * radius)
        bessel = torch.special.bessel_j1(argument).numpy()
        # J1(2 pi c r) / (pi r) tends to the cutoff c as r -> 0.
        with np.errstate(invalid="ignore", divide="ignore"):
            taps = np.where(radius > 0, bessel / (np.pi * radius), cutoff)
        taps = taps * np.outer(window, window)
    return (taps / np.sum(taps)).astype(np.float32)


def _kaiser_attenuation(numtaps: int, width: float) -> float:
    """Kaiser's estimate of the stopband attenuation (dB) of ``numtaps`` taps and a
    transition ``width`` relative to Nyquist."""
    return 2.285 * (numtaps - 1) * np.pi * width + 7.95


def _kaiser_beta(attenuation: float) -> float:
    """Kaiser's window shape for an attenuation in dB."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0
