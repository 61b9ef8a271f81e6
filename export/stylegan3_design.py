"""StyleGAN3 trees as NVIDIA's constructor would pickle them, for tests and benchmarks.

No real snapshot is ever downloaded, so the tests need the tree a StyleGAN3 ``G_ema`` has:
the layer schedule of the Alias-Free GAN paper (cutoffs, stopbands, sampling rates, sizes,
widths; its appendix F), each layer's resampling factors and padding, and its filters,
designed as theirs are (Kaiser-windowed sinc, or a jinc for radial ones), with random weights.
``export.stylegan3`` reads such a tree exactly as it reads a real one.

The filter design follows the window method (Kaiser's formulas for beta and attenuation, as
SciPy's ``firwin`` applies them); tests/test_stylegan3.py checks it against SciPy's values
and the schedule against NVIDIA's released FFHQ 1024 px StyleGAN3-T.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from export.stylegan_pickle import PickledModule

SYNTHETIC_MODULE_SRC = '"""Stand-in for training/networks_stylegan3.py in synthetic pickles."""\n'
"""What a synthetic tree claims as its classes' source: only its sha256 is recorded."""


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
