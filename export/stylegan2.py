"""Our own StyleGAN2 generator (config F / ADA, with or without a class label), clean-room.

An artist's StyleGAN2-ADA pickle (from NVlabs/stylegan2-ada-pytorch, or from the StyleGAN2 copy
in NVlabs/stylegan3) holds the weights we want, but the code that comes with it is under a
non-commercial licence that a museum show does not meet. This module is written from the
StyleGAN2 paper (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", 2020)
and the tensor names, shapes and attributes such pickles store, in plain PyTorch ops that
export to ONNX with a dynamic batch axis: the modulated convolution in its non-fused form (so
no weight is per sample), FIR resampling as zero insertion, padding and a depthwise
convolution, bias and activation as add, leaky ReLU, gain and clamp.

Which tensors exist, and their shapes, follow from the Generator's constructor arguments; the
numbers a layer's forward pass uses (gains, clamp, up-sampling factor, padding) are read from
that layer's own attributes, as NVIDIA's forward passes read them; the filters are the pickle's
buffers. Layers NVIDIA runs in fp16 on a GPU (``num_fp16_res``) are computed in fp32, as
NVIDIA's code does with ``force_fp32`` (and, in the stylegan3 repository, off CUDA).

What is matched, learnt by reading NVlabs/stylegan2-ada-pytorch training/networks.py and
torch_utils/ops/{upfirdn2d,bias_act,conv2d_resample}.py and NVlabs/stylegan3
training/networks_stylegan2.py, and how it is checked (tests/test_stylegan2.py):

- Mapping: z, and the label through ``embed`` (linear), each scaled to unit mean square
  (epsilon 1e-8), concatenated z first; each layer x W^T * weight_gain + b * bias_gain (the
  pickled gains: lr_multiplier / sqrt(fan-in), and lr_multiplier), leaky ReLU 0.2 times
  sqrt(2). Truncation w_avg.lerp(w, psi), the same w for every layer. Checked: psi = 0 gives
  exactly w_avg's image; ONNX parity; each label its own w.
- Synthesis layer: styles = affine(w) (bias stored around 1, gain 1/sqrt(w_dim)); the raw
  weight (demodulation cancels any gain) applied to x * styles, then times
  rsqrt(sum over in, ky, kx of (weight * style)^2 + 1e-8) per sample and output channel; plus
  noise_const * noise_strength; plus bias; leaky ReLU 0.2 times act_gain (sqrt 2); clamp to
  +-conv_clamp. NVIDIA's fp16 pre-normalisation only runs on fp16 inputs and is a pure rescale
  under demodulation, so fp32 results do not depend on it. Checked: against one modulated,
  demodulated weight per sample in a grouped convolution, within 1e-4 of the output's range.
- Up-sampling layer (conv0, up 2): transposed convolution, stride 2, with the weight as
  [in, out, k, k] unflipped, then the FIR filter (the pickled [1,3,3,1] outer product / 64)
  at gain 4 with padding p + (fw + up - 1) // 2 - (k - 1) before and p + (fw - up) // 2 -
  (k - up) after (1 and 1). Checked: against conv2d_resample's general form (zero insertion,
  padding 3 and 2, filter at gain 4, true convolution with the weight) in the same reference.
- upfirdn2d: zero insertion, padding (negative crops), true convolution with the filter
  times gain (2-D, or the outer product of 1-D taps), every down-th pixel. Checked: against a
  sum over taps with an asymmetric filter, lopsided and negative padding.
- ToRGB: styles * 1/sqrt(in), 1x1 convolution without demodulation, bias, clamp to
  +-conv_clamp. 'skip': the image so far up-sampled by the block's filter (zero insertion,
  padding 2 and 1, gain 4) plus this block's toRGB; 'orig' and 'resnet': toRGB in the last
  block only; 'resnet' adds a bias-free 1x1 shortcut (weight_gain, same up-sampling) and
  scales both branches' gain and clamp by sqrt(0.5).
- w per layer: block b takes ws[:, i : i + num_conv + num_torgb] and moves i by num_conv, so
  each toRGB shares its w with the next block's conv0; num_ws = 2 log2(R) - 2 (14 at 256 px).
  Channels min(channel_base / res, channel_max). Checked: every one of the ws changes the
  image; config F's layout at 256 px.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.stylegan_generator import StyleGenerator
from export.stylegan_layers import (
    ACTIVATION_GAINS,
    EPSILON,
    Dense,
    MappingNetwork,
    activate,
    activation_of,
    attribute,
    check_tensors,
    clamp_of,
    number,
    whole,
)
from export.stylegan_pickle import PickledModule
from installation.errors import UserError

ADA = "stylegan2-ada-pytorch"
"""NVlabs/stylegan2-ada-pytorch: ``training.networks``; synthesis settings nested in
``synthesis_kwargs``."""
STYLEGAN3 = "stylegan3"
"""NVlabs/stylegan3's copy, ``training.networks_stylegan2``: synthesis settings passed flat to
the Generator, other defaults, and a few more attributes per layer."""
REPOSITORIES = (ADA, STYLEGAN3)

RESIDUAL_GAIN = math.sqrt(0.5)
"""The 'resnet' architecture scales both branches so their sum keeps unit variance."""

_GENERATOR_KEYS = frozenset(
    {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}
)
_WHOLE = (numbers.Integral,)
"""Settings that count things: numpy integers welcome, bools not."""
_NETWORK_KEYS = frozenset({"channel_base", "channel_max", "num_fp16_res"})
"""Synthesis settings the SynthesisNetwork consumes; the rest go on to every block."""
_BLOCK_KEYS = frozenset(
    {
        "architecture",
        "resample_filter",
        "conv_clamp",
        "fp16_channels_last",
        "fused_modconv_default",
    }
)
"""Block settings a SynthesisBlock consumes; the rest go on to every SynthesisLayer."""


# ---------------------------------------------------------------------------------------------
# Plain-op building blocks


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by inserting ``up - 1`` zeros after each pixel, pad by ``padding`` (x before,
    x after, y before, y after; negative crops), convolve every channel with the FIR filter
    ``f`` (1-D separable taps or 2-D) scaled to an overall gain of ``gain``, and keep every
    ``down``-th pixel: the resampling StyleGAN2 uses around every change of resolution."""
    return _upfirdn(x, fir_kernel(f, gain, x.shape[1]), up, down, padding)


def fir_kernel(f: torch.Tensor, gain: float, channels: int) -> torch.Tensor:
    """The depthwise ``conv2d`` weight [channels, 1, fh, fw] that applies filter ``f`` with
    ``gain``; flipped, because ``conv2d`` correlates and the filter is meant as a true
    convolution. Layers build it once, so the exported graph has a constant of known shape."""
    taps = f if f.ndim == 2 else torch.outer(f, f)
    return (taps * gain).flip([0, 1])[None, None].repeat(channels, 1, 1, 1)


def _upfirdn(
    x: torch.Tensor,
    kernel: torch.Tensor,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
) -> torch.Tensor:
    """``upfirdn2d`` with a ready ``fir_kernel``, in ops every ONNX runtime has: the zero
    insertion as a stride-``up`` transposed convolution with a unit kernel (exact: it only
    places each pixel), the padding and the filter as one depthwise convolution (a separate
    pad only where the padding is lopsided), the down-sampling as strided slicing."""
    channels = kernel.shape[0]
    x0, x1, y0, y1 = padding
    if up > 1:
        # The up - 1 zeros after the last pixel are left to the padding after.
        unit = kernel.new_ones(channels, 1, 1, 1)
        x = F.conv_transpose2d(x, unit, stride=up, groups=channels)
        x1, y1 = x1 + up - 1, y1 + up - 1
    if x0 == x1 >= 0 and y0 == y1 >= 0:
        x = F.conv2d(x, kernel, padding=(y0, x0), groups=channels)
    else:
        x = F.conv2d(F.pad(x, [x0, x1, y0, y1]), kernel, groups=channels)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def _filter_size(f: torch.Tensor) -> tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter."""
    return (f.shape[-1], f.shape[0])


def _upsample_padding(f: torch.Tensor, up: int) -> tuple[int, int, int, int]:
    """Padding that makes ``upfirdn2d(x, f, up)`` exactly ``up`` times larger, centred."""
    fw, fh = _filter_size(f)
    return ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)


def _per_channel(values: torch.Tensor) -> torch.Tensor:
    """[N, C] -> [N, C, 1, 1], to scale feature maps channel by channel."""
    return values.unsqueeze(2).unsqueeze(3)


def _bias(node: PickledModule) -> torch.Tensor:
    """A convolution's bias as [1, C, 1, 1], ready to add to feature maps."""
    return node.parameters["bias"].reshape(1, -1, 1, 1)


# ---------------------------------------------------------------------------------------------
# The layers


class _ModulatedConv(nn.Module):
    """A synthesis layer: style-modulated, demodulated 3x3 convolution (up-sampling by a
    transposed convolution and the FIR filter when ``up`` > 1), constant noise, bias, leaky
    ReLU, gain and clamp. ``scale`` multiplies gain and clamp ('resnet' blocks' residual
    branch)."""

    def __init__(self, node: PickledModule, path: str, scale: float = 1.0) -> None:
        super().__init__()
        self.affine = Dense(node.children["affine"], f"{path}.affine")
        self.up = whole(node, path, "up")
        self.padding = whole(node, path, "padding")
        self.activation = activation_of(node, path)
        self.gain = number(node, path, "act_gain") * scale
        clamp = clamp_of(node, path)
        self.clamp = None if clamp is None else clamp * scale
        weight = node.parameters["weight"]
        # Demodulation needs, per sample, sum over (in, ky, kx) of (weight * style)^2: the
        # per-(out, in) energy of the weight, weighted by the squared styles.
        self.register_buffer("energy", weight.square().sum(dim=(2, 3)))
        self.register_buffer("bias", _bias(node))
        noise = None
        if "noise_const" in node.buffers:
            noise = node.buffers["noise_const"] * node.parameters["noise_strength"]
        self.register_buffer("noise", noise)
        if self.up == 1:
            self.register_buffer("weight", weight)
            return
        # The transposed convolution needs the weight as [in, out, kh, kw].
        self.register_buffer("weight", weight.transpose(0, 1).contiguous())
        resample_filter = node.buffers["resample_filter"]
        self.register_buffer("fir", fir_kernel(resample_filter, self.up**2, weight.shape[0]))
        kh, kw = weight.shape[2], weight.shape[3]
        fw, fh = _filter_size(resample_filter)
        up, pad = self.up, self.padding
        px0 = pad + (fw + up - 1) // 2 - (kw - 1)
        px1 = pad + (fw - up) // 2 - (kw - up)
        py0 = pad + (fh + up - 1) // 2 - (kh - 1)
        py1 = pad + (fh - up) // 2 - (kh - up)
        # Any padding both sides share goes to the transposed convolution.
        self.inner = (max(min(-py0, -py1), 0), max(min(-px0, -px1), 0))
        pyt, pxt = self.inner
        self.outer = (px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        demodulation = torch.rsqrt(styles.square() @ self.energy.t() + EPSILON)
        x = x * _per_channel(styles)
        if self.up == 1:
            x = F.conv2d(x, self.weight, padding=self.padding)
        else:
            x = F.conv_transpose2d(x, self.weight, stride=self.up, padding=self.inner)
            x = _upfirdn(x, self.fir, 1, 1, self.outer)
        x = x * _per_channel(demodulation)
        if self.noise is not None:
            x = x + self.noise
        x = x + self.bias
        return activate(x, self.activation, self.gain, self.clamp)


class _ToRGB(nn.Module):
    """Modulated 1x1 convolution to colour, without demodulation; bias and clamp."""

    def __init__(self, node: PickledModule, path: str) -> None:
        super().__init__()
        self.affine = Dense(node.children["affine"], f"{path}.affine")
        self.weight_gain = number(node, path, "weight_gain")
        self.clamp = clamp_of(node, path)
        self.register_buffer("weight", node.parameters["weight"])
        self.register_buffer("bias", _bias(node))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = F.conv2d(x * _per_channel(styles), self.weight)
        return activate(x + self.bias, "linear", 1.0, self.clamp)


class _Skip(nn.Module):
    """The 'resnet' shortcut: bias-free 1x1 convolution (weight_gain), then FIR up-sampling."""

    def __init__(self, node: PickledModule, path: str) -> None:
        super().__init__()
        self.up = whole(node, path, "up")
        self.activation = activation_of(node, path)
        self.gain = number(node, path, "act_gain") * RESIDUAL_GAIN
        clamp = clamp_of(node, path)
        self.clamp = None if clamp is None else clamp * RESIDUAL_GAIN
        weight_gain = number(node, path, "weight_gain")
        self.register_buffer("weight", node.parameters["weight"] * weight_gain)
        resample_filter = node.buffers["resample_filter"]
        self.register_buffer("fir", fir_kernel(resample_filter, self.up**2, self.weight.shape[0]))
        self.padding = _upsample_padding(resample_filter, self.up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight)
        x = _upfirdn(x, self.fir, self.up, 1, self.padding)
        return activate(x, self.activation, self.gain, self.clamp)


class _Block(nn.Module):
    """One resolution: (up-sampling conv0,) conv1, and the image path: the lower resolution's
    image up-sampled by the FIR filter plus this block's toRGB ('skip'), or toRGB only in the
    last block ('orig', 'resnet'). Which layers exist is the pickle's (checked against the
    architecture before): a 'resnet' block has a skip, and then halves both branches."""

    def __init__(self, node: PickledModule, path: str, img_channels: int) -> None:
        super().__init__()
        self.register_buffer("const", node.parameters.get("const"))
        residual = "skip" in node.children
        scale = RESIDUAL_GAIN if residual else 1.0
        self.conv0 = (
            _ModulatedConv(node.children["conv0"], f"{path}.conv0")
            if "conv0" in node.children
            else None
        )
        self.conv1 = _ModulatedConv(node.children["conv1"], f"{path}.conv1", scale)
        self.skip = _Skip(node.children["skip"], f"{path}.skip") if residual else None
        self.torgb = (
            _ToRGB(node.children["torgb"], f"{path}.torgb") if "torgb" in node.children else None
        )
        self.num_conv = 2 if self.conv0 is not None else 1
        resample_filter = node.buffers["resample_filter"]
        self.register_buffer("fir", fir_kernel(resample_filter, 4, img_channels))
        self.padding = _upsample_padding(resample_filter, 2)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, first: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``ws[:, first]`` onward are this block's: conv0, conv1, then toRGB (which shares
        its w with the next block's conv0)."""
        if x is None:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, first])
        else:
            shortcut = self.skip(x) if self.skip is not None else None
            x = self.conv0(x, ws[:, first])
            x = self.conv1(x, ws[:, first + 1])
            if shortcut is not None:
                x = shortcut + x
        if img is not None:
            img = _upfirdn(img, self.fir, 2, 1, self.padding)
        if self.torgb is not None:
            y = self.torgb(x, ws[:, first + self.num_conv])
            img = y if img is None else img + y
        return x, img


class StyleGAN2Generator(StyleGenerator):
    """StyleGAN2 with the weights of one pickled Generator; see ``build``."""

    def __init__(self, net: PickledModule, config: _Config) -> None:
        super().__init__(
            z_dim=config.z_dim,
            c_dim=config.c_dim,
            w_dim=config.w_dim,
            num_ws=config.num_ws,
            img_resolution=config.img_resolution,
            img_channels=config.img_channels,
        )
        mapping = net.children["mapping"]
        self.w_avg.copy_(mapping.buffers["w_avg"])
        self.mapping = MappingNetwork(
            mapping, "mapping", config.z_dim, config.c_dim, config.mapping_layers
        )
        synthesis = net.children["synthesis"]
        self.blocks = nn.ModuleList(
            _Block(synthesis.children[f"b{res}"], f"synthesis.b{res}", config.img_channels)
            for res in config.resolutions
        )

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mapping(z, c)

    def synthesize(self, ws: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        if transform is not None:
            raise ValueError("StyleGAN2 has no input transform")
        x = img = None
        first = 0
        for block in self.blocks:
            x, img = block(x, img, ws, first)
            first += block.num_conv
        return img


# ---------------------------------------------------------------------------------------------
# The architecture a Generator's constructor arguments describe


@dataclass(frozen=True)
class _Config:
    """What NVIDIA's constructors would build for a Generator's arguments, defaults filled."""

    repository: str
    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_layers: int
    embed_features: int
    layer_features: int
    mapping_activation: str
    lr_multiplier: float
    w_avg_beta: float | None
    channel_base: int
    channel_max: int
    num_fp16_res: int
    architecture: str
    conv_clamp: float | None
    resample_filter: Any
    kernel_size: int
    use_noise: bool
    activation: str
    fp16_channels_last: bool
    mapping_kwargs: dict[str, Any]
    synthesis_kwargs: dict[str, Any]

    @property
    def resolutions(self) -> list[int]:
        return [2**power for power in range(2, self.img_resolution.bit_length())]

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def num_ws(self) -> int:
        """One w per convolution (one in the 4x4 block, two in each later one) plus one for
        the last toRGB; every earlier toRGB shares its w with the next block's conv0."""
        return 2 * len(self.resolutions)

    @property
    def fp16_resolution(self) -> int:
        return max(2 ** (self.img_resolution.bit_length() - self.num_fp16_res), 8)


def _setting(
    kwargs: dict[str, Any],
    key: str,
    default: Any,
    kinds: tuple[type, ...],
    optional: bool = False,
) -> Any:
    """``kwargs[key]`` (or ``default``), refused unless of one of ``kinds``; ``optional``
    settings may also be None (NVIDIA's "disabled" or "same as w_dim")."""
    value = kwargs.get(key, default)
    if value is None and optional:
        return None
    wrong_kind = isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds)
    if wrong_kind or (kinds == _WHOLE and value < 0):
        raise UserError(f"Generator setting {key} is {value!r}, not what StyleGAN2 takes")
    return int(value) if kinds == _WHOLE else value


def _configure(init_kwargs: dict[str, Any]) -> _Config:
    """Read a Generator's constructor arguments, with the defaults of the repository whose
    layout they have (stylegan2-ada-pytorch nests synthesis settings, stylegan3 does not)."""
    repository = ADA if "synthesis_kwargs" in init_kwargs else STYLEGAN3
    for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
        if key not in init_kwargs:
            raise UserError(f"the Generator's settings have no {key}")
    mapping = dict(_setting(init_kwargs, "mapping_kwargs", {}, (dict,)))
    if repository == ADA:
        synthesis = dict(_setting(init_kwargs, "synthesis_kwargs", {}, (dict,)))
    else:
        synthesis = {k: v for k, v in init_kwargs.items() if k not in _GENERATOR_KEYS}
    whole, real = _WHOLE, (numbers.Real,)
    resolution = _setting(init_kwargs, "img_resolution", None, whole)
    if resolution < 4 or resolution & (resolution - 1):
        raise UserError(f"Generator setting img_resolution is {resolution}, not a power of 2")
    w_dim = _setting(init_kwargs, "w_dim", None, whole)
    if w_dim == 0:
        raise UserError("Generator setting w_dim is 0: there would be no w")
    c_dim = _setting(init_kwargs, "c_dim", None, whole)
    embed = _setting(mapping, "embed_features", None, whole, optional=True)
    architecture = _setting(synthesis, "architecture", "skip", (str,))
    if architecture not in ("skip", "orig", "resnet"):
        raise UserError(f"Generator setting architecture is {architecture!r}")
    return _Config(
        repository=repository,
        z_dim=_setting(init_kwargs, "z_dim", None, whole),
        c_dim=c_dim,
        w_dim=w_dim,
        img_resolution=resolution,
        img_channels=_setting(init_kwargs, "img_channels", None, whole),
        mapping_layers=_setting(mapping, "num_layers", 8, whole),
        embed_features=0 if c_dim == 0 else (w_dim if embed is None else embed),
        layer_features=_setting(mapping, "layer_features", None, whole, optional=True) or w_dim,
        mapping_activation=_setting(mapping, "activation", "lrelu", (str,)),
        lr_multiplier=_setting(mapping, "lr_multiplier", 0.01, real),
        w_avg_beta=_setting(
            mapping, "w_avg_beta", 0.995 if repository == ADA else 0.998, real, optional=True
        ),
        channel_base=_setting(synthesis, "channel_base", 32768, whole),
        channel_max=_setting(synthesis, "channel_max", 512, whole),
        num_fp16_res=_setting(synthesis, "num_fp16_res", 0 if repository == ADA else 4, whole),
        architecture=architecture,
        conv_clamp=_setting(
            synthesis, "conv_clamp", None if repository == ADA else 256, real, optional=True
        ),
        resample_filter=_setting(synthesis, "resample_filter", [1, 3, 3, 1], (list, tuple)),
        kernel_size=_setting(synthesis, "kernel_size", 3, whole),
        use_noise=_setting(synthesis, "use_noise", True, (bool,)),
        activation=_setting(synthesis, "activation", "lrelu", (str,)),
        fp16_channels_last=_setting(synthesis, "fp16_channels_last", False, (bool,)),
        mapping_kwargs=mapping,
        synthesis_kwargs=synthesis,
    )


def config_f(resolution: int = 256, c_dim: int = 0) -> dict[str, Any]:
    """The settings stylegan2-ada-pytorch's ``--cfg=stylegan2`` (the paper's config F, with
    mixed precision) gives a generator: a ``synthetic`` config for benchmarks."""
    return {
        "z_dim": 512,
        "c_dim": c_dim,
        "w_dim": 512,
        "img_resolution": resolution,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 8},
        "synthesis_kwargs": {
            "channel_base": 32768,
            "channel_max": 512,
            "num_fp16_res": 4,
            "conv_clamp": 256,
        },
    }


# ---------------------------------------------------------------------------------------------
# The tree NVIDIA's constructors build: checked against in ``build``, filled in ``synthetic``


def setup_filter(taps: Any) -> torch.Tensor:
    """A ``resample_filter`` buffer as the constructors store it: normalised to unit DC gain,
    and 2-D (the outer product) unless it has 8 or more taps, which stay separable."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and f.numel() < 8:
        f = torch.outer(f, f)
    return f / f.sum()


def _shape(*dims: int) -> torch.Tensor:
    """A tensor that is only a shape (on the meta device: no memory, even for config F)."""
    return torch.empty(dims, device="meta")


class _Skeleton:
    """Builds the PickledModule tree for one ``_Config``: class names, constructor arguments,
    attributes and tensor names as NVIDIA's ``__init__`` methods set them; tensors are bare
    shapes except the filters, which carry their real values."""

    def __init__(self, config: _Config) -> None:
        self.config = config
        self.ada = config.repository == ADA
        module = "training.networks" if self.ada else "training.networks_stylegan2"
        stand_in = f"# {module}: synthetic stand-in, no code\n"
        self.source_sha256 = hashlib.sha256(stand_in.encode()).hexdigest()
        self.block_kwargs = {
            k: v for k, v in config.synthesis_kwargs.items() if k not in _NETWORK_KEYS
        }
        self.layer_kwargs = {k: v for k, v in self.block_kwargs.items() if k not in _BLOCK_KEYS}

    def node(
        self,
        class_name: str,
        init_args: tuple[Any, ...],
        init_kwargs: dict[str, Any],
        attributes: dict[str, Any],
        parameters: dict[str, torch.Tensor] | None = None,
        buffers: dict[str, torch.Tensor] | None = None,
        children: dict[str, PickledModule] | None = None,
    ) -> PickledModule:
        return PickledModule(
            class_name=class_name,
            init_kwargs=init_kwargs,
            attributes=attributes,
            parameters=parameters or {},
            buffers=buffers or {},
            children=children or {},
            source_sha256=self.source_sha256,
            init_args=init_args,
        )

    def generator(self, init_kwargs: dict[str, Any]) -> PickledModule:
        c = self.config
        sizes = {
            "z_dim": c.z_dim,
            "c_dim": c.c_dim,
            "w_dim": c.w_dim,
            "img_resolution": c.img_resolution,
            "img_channels": c.img_channels,
        }
        return self.node(
            "Generator",
            (),
            init_kwargs,
            {**sizes, "num_ws": c.num_ws},
            children={"synthesis": self.synthesis(), "mapping": self.mapping()},
        )

    def mapping(self) -> PickledModule:
        c = self.config
        features = [c.z_dim + c.embed_features]
        features += [c.layer_features] * (c.mapping_layers - 1) + [c.w_dim]
        children = {}
        if c.c_dim > 0:
            children["embed"] = self.dense(c.c_dim, c.embed_features, {})
        layer = {"activation": c.mapping_activation, "lr_multiplier": c.lr_multiplier}
        for index in range(c.mapping_layers):
            children[f"fc{index}"] = self.dense(features[index], features[index + 1], layer)
        sizes = {"z_dim": c.z_dim, "c_dim": c.c_dim, "w_dim": c.w_dim, "num_ws": c.num_ws}
        return self.node(
            "MappingNetwork",
            (),
            {**sizes, **c.mapping_kwargs},
            {**sizes, "num_layers": c.mapping_layers, "w_avg_beta": c.w_avg_beta},
            buffers={} if c.w_avg_beta is None else {"w_avg": _shape(c.w_dim)},
            children=children,
        )

    def dense(self, inputs: int, outputs: int, kwargs: dict[str, Any]) -> PickledModule:
        lr_multiplier = kwargs.get("lr_multiplier", 1 if self.ada else 1.0)
        attributes = {} if self.ada else {"in_features": inputs, "out_features": outputs}
        attributes |= {
            "activation": kwargs.get("activation", "linear"),
            "weight_gain": lr_multiplier / np.sqrt(inputs),
            "bias_gain": lr_multiplier,
        }
        return self.node(
            "FullyConnectedLayer",
            (inputs, outputs),
            kwargs,
            attributes,
            parameters={"weight": _shape(outputs, inputs), "bias": _shape(outputs)},
        )

    def synthesis(self) -> PickledModule:
        c = self.config
        blocks = {}
        for res in c.resolutions:
            inputs = c.channels(res // 2) if res > 4 else 0
            blocks[f"b{res}"] = self.block(inputs, c.channels(res), res)
        sizes = {"w_dim": c.w_dim, "img_resolution": c.img_resolution}
        attributes = {
            **sizes,
            "img_resolution_log2": c.img_resolution.bit_length() - 1,
            "img_channels": c.img_channels,
        }
        if not self.ada:
            attributes["num_fp16_res"] = c.num_fp16_res
        attributes |= {"block_resolutions": c.resolutions, "num_ws": c.num_ws}
        return self.node(
            "SynthesisNetwork",
            (),
            {**sizes, "img_channels": c.img_channels, **c.synthesis_kwargs},
            attributes,
            children=blocks,
        )

    def block(self, inputs: int, outputs: int, res: int) -> PickledModule:
        c = self.config
        use_fp16 = res >= c.fp16_resolution
        is_last = res == c.img_resolution
        shared = {"w_dim": c.w_dim, "resolution": res}
        kwargs = {
            **shared,
            "img_channels": c.img_channels,
            "is_last": is_last,
            "use_fp16": use_fp16,
            **self.block_kwargs,
        }
        channels_last = use_fp16 and c.fp16_channels_last
        layer = {**shared, "conv_clamp": c.conv_clamp, "channels_last": channels_last}
        children = {}
        if inputs:
            up = {"up": 2, "resample_filter": c.resample_filter}
            children["conv0"] = self.layer(inputs, outputs, {**layer, **up})
        children["conv1"] = self.layer(outputs, outputs, layer)
        if is_last or c.architecture == "skip":
            children["torgb"] = self.torgb(outputs, c.conv_clamp, channels_last)
        if inputs and c.architecture == "resnet":
            children["skip"] = self.skip(inputs, outputs, channels_last)
        attributes = {
            "in_channels": inputs,
            "w_dim": c.w_dim,
            "resolution": res,
            "img_channels": c.img_channels,
            "is_last": is_last,
            "architecture": c.architecture,
            "use_fp16": use_fp16,
            "channels_last": channels_last,
        }
        if not self.ada:
            attributes["fused_modconv_default"] = c.synthesis_kwargs.get(
                "fused_modconv_default", True
            )
        attributes |= {"num_conv": 2 if inputs else 1, "num_torgb": int("torgb" in children)}
        return self.node(
            "SynthesisBlock",
            (inputs, outputs),
            kwargs,
            attributes,
            parameters={} if inputs else {"const": _shape(outputs, res, res)},
            buffers={"resample_filter": setup_filter(c.resample_filter)},
            children=children,
        )

    def layer(self, inputs: int, outputs: int, kwargs: dict[str, Any]) -> PickledModule:
        c = self.config
        kwargs = {**kwargs, **self.layer_kwargs}
        res, up = kwargs["resolution"], kwargs.get("up", 1)
        attributes = {} if self.ada else {"in_channels": inputs, "out_channels": outputs}
        if not self.ada:
            attributes["w_dim"] = c.w_dim
        gain = ACTIVATION_GAINS[c.activation]
        attributes |= {
            "resolution": res,
            "up": up,
            "use_noise": c.use_noise,
            "activation": c.activation,
            "conv_clamp": c.conv_clamp,
            "padding": c.kernel_size // 2,
            "act_gain": 1 if gain == 1 else np.float64(gain),
        }
        k = c.kernel_size
        parameters = {"weight": _shape(outputs, inputs, k, k)}
        buffers = {"resample_filter": setup_filter(kwargs.get("resample_filter", [1, 3, 3, 1]))}
        if c.use_noise:
            buffers["noise_const"] = _shape(res, res)
            parameters["noise_strength"] = _shape()
        parameters["bias"] = _shape(outputs)
        return self.node(
            "SynthesisLayer",
            (inputs, outputs),
            kwargs,
            attributes,
            parameters=parameters,
            buffers=buffers,
            children={"affine": self.dense(c.w_dim, inputs, {"bias_init": 1})},
        )

    def torgb(self, inputs: int, conv_clamp: float | None, channels_last: bool) -> PickledModule:
        c = self.config
        attributes = (
            {}
            if self.ada
            else {
                "in_channels": inputs,
                "out_channels": c.img_channels,
                "w_dim": c.w_dim,
            }
        )
        attributes |= {"conv_clamp": conv_clamp, "weight_gain": 1 / np.sqrt(inputs)}
        kwargs = {"w_dim": c.w_dim, "conv_clamp": conv_clamp, "channels_last": channels_last}
        return self.node(
            "ToRGBLayer",
            (inputs, c.img_channels),
            kwargs,
            attributes,
            parameters={
                "weight": _shape(c.img_channels, inputs, 1, 1),
                "bias": _shape(c.img_channels),
            },
            children={"affine": self.dense(c.w_dim, inputs, {"bias_init": 1})},
        )

    def skip(self, inputs: int, outputs: int, channels_last: bool) -> PickledModule:
        c = self.config
        kwargs = {
            "kernel_size": 1,
            "bias": False,
            "up": 2,
            "resample_filter": c.resample_filter,
            "channels_last": channels_last,
        }
        attributes = {} if self.ada else {"in_channels": inputs, "out_channels": outputs}
        attributes |= {
            "activation": "linear",
            "up": 2,
            "down": 1,
            "conv_clamp": None,
            "padding": 0,
            "weight_gain": 1 / np.sqrt(inputs),
            "act_gain": 1,
        }
        return self.node(
            "Conv2dLayer",
            (inputs, outputs),
            kwargs,
            attributes,
            parameters={"weight": _shape(outputs, inputs, 1, 1)},
            buffers={"resample_filter": setup_filter(c.resample_filter)},
        )


def _skeleton(config: _Config, init_kwargs: dict[str, Any]) -> PickledModule:
    return _Skeleton(config).generator(init_kwargs)


# ---------------------------------------------------------------------------------------------
# Entry points


def is_stylegan2(net: PickledModule) -> bool:
    """Whether ``net`` is laid out as a StyleGAN2 Generator (its synthesis network made of
    ``b4``, ``b8``, ... blocks), as opposed to StyleGAN3's, which shares the class name."""
    synthesis = net.children.get("synthesis")
    return net.class_name == "Generator" and synthesis is not None and "b4" in synthesis.children


def build(net: PickledModule) -> StyleGAN2Generator:
    """Our generator with the weights of a pickled StyleGAN2 ``Generator`` (``G_ema``), in
    eval mode; ``UserError`` naming the tensor or setting when the pickle is laid out
    otherwise than NVIDIA's code lays out that Generator's settings."""
    if not is_stylegan2(net):
        raise UserError(
            f"the network is a {net.class_name} without synthesis.b4: not a StyleGAN2 generator"
        )
    config = _configure(net.init_kwargs)
    if config.w_avg_beta is None:
        raise UserError("the mapping network keeps no w_avg (w_avg_beta is None)")
    skeleton = _skeleton(config, net.init_kwargs)
    check_tensors(
        net.tensors(),
        {name: tensor.shape for name, tensor in skeleton.tensors().items()},
        "StyleGAN2",
    )
    _check_geometry(net, skeleton, "")
    num_ws = whole(net, "generator", "num_ws")
    if num_ws != config.num_ws:
        raise UserError(f"the generator says num_ws = {num_ws}, its layers take {config.num_ws}")
    return StyleGAN2Generator(net, config).eval()


def _check_geometry(net: PickledModule, expected: PickledModule, path: str) -> None:
    """The up-sampling factors and paddings the layers read place every pixel; the block
    sizes fix them, so they must be the ones NVIDIA's constructors set for these settings."""
    for key in ("up", "padding"):
        if key in expected.attributes:
            value = attribute(net, path, key)
            if value != expected.attributes[key]:
                wanted = expected.attributes[key]
                raise UserError(f"{path}.{key} is {value!r}, expected {wanted!r} for this layout")
    for name, child in expected.children.items():
        _check_geometry(net.children[name], child, f"{path}.{name}" if path else name)


def synthetic(config: dict[str, Any], seed: int) -> PickledModule:
    """A Generator tree as NVIDIA's code would pickle it for ``config``, random weights drawn
    from ``seed``: for tests and benchmarks, which must not need a real pickle.

    ``config`` holds the Generator's arguments as stylegan2-ada-pytorch takes them (z_dim,
    c_dim, w_dim, img_resolution, img_channels, mapping_kwargs, synthesis_kwargs) and
    optionally ``repository``: ``"stylegan3"`` lays the tree out as that repository's copy
    (synthesis settings flat, its defaults and extra attributes). Every tensor is random,
    including those NVIDIA initialises to constants (biases, noise strengths, w_avg), so a
    numeric mistake anywhere shows.
    """
    settings = dict(config)
    repository = settings.pop("repository", ADA)
    if repository not in REPOSITORIES:
        raise ValueError(f"repository must be one of {REPOSITORIES}, got {repository!r}")
    synthesis = settings.pop("synthesis_kwargs", {})
    if repository == ADA:
        init_kwargs = {**settings, "synthesis_kwargs": synthesis}
    else:
        # What stylegan3's train.py passes for --cfg=stylegan2.
        init_kwargs = {"fused_modconv_default": "inference_only", **settings, **synthesis}
    skeleton = _skeleton(_configure(init_kwargs), init_kwargs)
    return _filled(skeleton, torch.Generator().manual_seed(seed))


def _filled(node: PickledModule, generator: torch.Generator) -> PickledModule:
    """``node`` with random tensors of its shapes (filters kept), in a fixed order."""

    def draw(name: str, like: torch.Tensor) -> torch.Tensor:
        if name == "resample_filter":
            return like
        noise = torch.randn(like.shape, generator=generator)
        if node.class_name == "FullyConnectedLayer":
            # Stored as NVIDIA stores them: divided by the lr multiplier its gains undo.
            lr_multiplier = float(node.attributes["bias_gain"])
            if name == "bias":
                return node.init_kwargs.get("bias_init", 0) + 0.1 * noise / lr_multiplier
            return noise / lr_multiplier
        if name in ("bias", "noise_strength"):
            return 0.1 * noise
        if name == "w_avg":
            return 0.5 * noise
        return noise

    return replace(
        node,
        parameters={name: draw(name, value) for name, value in node.parameters.items()},
        buffers={name: draw(name, value) for name, value in node.buffers.items()},
        children={name: _filled(child, generator) for name, child in node.children.items()},
    )
