"""Read a StyleGAN2-ADA / StyleGAN3 training pickle as data, without running any of it.

NVIDIA's pickles store each network as a ``torch_utils.persistence`` object: the reduce tuple
calls ``_reconstruct_persistent_obj(meta)``, and that function ``exec``s ``meta["module_src"]``,
Python source carried inside the file, to get the class back. Opening an artist's pickle the
normal way therefore runs whatever code the file holds. This loader's unpickler resolves only
the globals on an explicit allowlist; the persistence reconstructor is replaced by our own
function that turns ``meta`` into a ``PickledModule`` (class name, constructor arguments, plain
attributes, tensors, children) and only hashes ``module_src``, so the bundle can name the code
that trained the weights without ever running it. Tensors come back through torch's own
rebuilders, their storages through ``torch.load(weights_only=True)``. Any other global in the
file is refused with one line naming it: a pickle that needs more than data is not a StyleGAN
snapshot we can trust, whatever else it is.
"""

from __future__ import annotations

import codecs
import collections
import hashlib
import io
import pickle
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from installation.errors import UserError, first_line, reason

NETWORK_KEYS = ("G", "D", "G_ema")
"""Keys that every StyleGAN2-ADA and StyleGAN3 snapshot has (besides ``augment_pipe`` and
``training_set_kwargs``); their presence is how a snapshot is told from other pickled dicts."""


class _Refused(Exception):
    """Raised inside the unpickler; ``load_network`` adds the file name and makes it a
    ``UserError``, so the message is one line that names the file first."""


@dataclass(frozen=True)
class PickledModule:
    """One network object from the pickle, as data; nothing of it was executed.

    ``class_name`` is the name the pickle stores (``meta["class_name"]``: the bare class
    name, e.g. ``"SynthesisLayer"``; NVIDIA's persistence records no module name).
    ``attributes`` are the object's own entries (``in_size``, ``conv_clamp``, ...): torch's
    bookkeeping (``training``, hooks, every ``_``-prefixed key) is left out. ``init_args`` are
    the positional constructor arguments (sub-layers get some, e.g. a layer's in and out
    features, which the classes also keep as attributes).
    """

    class_name: str
    init_kwargs: dict[str, Any]
    attributes: dict[str, Any]
    parameters: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    children: dict[str, PickledModule]
    source_sha256: str | None
    init_args: tuple[Any, ...] = ()

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer of the tree under dotted names, like ``state_dict()``."""
        found = {**self.parameters, **self.buffers}
        for name, child in self.children.items():
            found.update({f"{name}.{key}": value for key, value in child.tensors().items()})
        return found

    def sources(self) -> dict[str, str]:
        """``class name -> module_src sha256`` for every persistent class in the tree, in the
        order first met: what the bundle's provenance records instead of the code."""
        found = {self.class_name: self.source_sha256} if self.source_sha256 else {}
        for child in self.children.values():
            for name, sha in child.sources().items():
                found.setdefault(name, sha)
        return found


def load_network(path: Path, key: str = "G_ema") -> PickledModule:
    """The network under ``key`` of the snapshot pickle at ``path``; ``UserError`` naming the
    file for anything that is not a StyleGAN snapshot made only of data."""
    snapshot = load_snapshot(path)
    if key not in snapshot:
        found = ", ".join(sorted(map(str, snapshot))) or "nothing"
        raise UserError(f"{path}: no {key!r} in the pickle (found: {found})")
    network = snapshot[key]
    if not isinstance(network, PickledModule):
        raise UserError(f"{path}: {key!r} is {type(network).__name__}, not a network object")
    return network


def load_snapshot(path: Path) -> dict[str, Any]:
    """The whole snapshot dict (networks as ``PickledModule``), read with the allowlist."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {reason(exc)}") from None
    try:
        content = _SafeUnpickler(io.BytesIO(data)).load()
    except _Refused as refusal:
        raise UserError(f"{path}: {refusal}") from None
    except Exception as error:
        # Damaged pickles fail with anything from EOFError to struct.error or a TypeError in
        # a reconstructor; the type is the useful clue, the message is often paragraphs.
        raise UserError(
            f"{path}: not a readable pickle (truncated or damaged: {type(error).__name__})"
        ) from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: the pickle holds a {type(content).__name__}, not a snapshot dict")
    missing = [key for key in NETWORK_KEYS if key not in content]
    if missing:
        found = ", ".join(sorted(map(str, content))) or "nothing"
        raise UserError(
            f"{path}: not a StyleGAN2/3 snapshot: no {', '.join(map(repr, missing))} "
            f"(found: {found})"
        )
    return content


def _storage_from_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` with torch's safe loader: a storage is pickled as a
    nested ``torch.save`` file, and that inner file gets the same no-code rule."""
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:
        # torch's refusal is paragraphs of advice around the one line that names the global.
        lines = [line for line in str(error).splitlines() if "GLOBAL" in line]
        raise _Refused(
            "a tensor's storage in the pickle is not plain data: "
            + (lines[0].strip() if lines else first_line(error))
        ) from None


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode``, which protocol-2 pickles use for bytes (numpy arrays' data)."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise _Refused(f"the pickle encodes bytes as {encoding!r}, expected latin1")
    return text.encode("latin1")


def _persistent_object(meta: Any) -> PickledModule:
    """Our ``_reconstruct_persistent_obj``: the object as data; ``module_src`` only hashed."""
    if not isinstance(meta, dict):
        raise _Refused(f"a persistent object's meta is {type(meta).__name__}, not a dict")
    class_name, source, state = meta.get("class_name"), meta.get("module_src"), meta.get("state")
    if meta.get("type") != "class" or not isinstance(class_name, str) or not class_name:
        raise _Refused(f"a persistent object of type {meta.get('type')!r} and class {class_name!r}")
    if not isinstance(source, str):
        raise _Refused(f"persistent object {class_name}: module_src is not text")
    if not isinstance(state, dict):
        raise _Refused(f"persistent object {class_name}: its state is not a dict")
    source_sha256 = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
    return _module(class_name, state, source_sha256)


def _module(class_name: str, state: dict[str, Any], source_sha256: str) -> PickledModule:
    children: dict[str, PickledModule] = {}
    for name, child in _table(class_name, "_modules", state).items():
        if child is None:
            continue
        if not isinstance(child, PickledModule):
            raise _Refused(f"{class_name}._modules[{name!r}] is {type(child).__name__}")
        children[str(name)] = child
    init_args = state.get("_init_args", ())
    if not isinstance(init_args, tuple | list):
        raise _Refused(f"{class_name}._init_args is {type(init_args).__name__}, not a tuple")
    return PickledModule(
        class_name=class_name,
        init_kwargs=dict(_table(class_name, "_init_kwargs", state)),
        attributes={
            key: value
            for key, value in state.items()
            if isinstance(key, str) and not key.startswith("_") and key != "training"
        },
        parameters=_tensors(class_name, "_parameters", state),
        buffers=_tensors(class_name, "_buffers", state),
        children=children,
        source_sha256=source_sha256,
        init_args=tuple(init_args),
    )


def _table(class_name: str, key: str, state: Mapping[str, Any]) -> Mapping[Any, Any]:
    value = state.get(key, {})
    if not isinstance(value, Mapping):
        raise _Refused(f"{class_name}.{key} is {type(value).__name__}, not a table")
    return value


def _tensors(class_name: str, key: str, state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A module's own parameters or buffers, detached; floating ones as float32 (StyleGAN
    keeps fp32 master weights even where it computes in fp16)."""
    found: dict[str, torch.Tensor] = {}
    for name, value in _table(class_name, key, state).items():
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise _Refused(f"{class_name}.{key}[{name!r}] is {type(value).__name__}, not a tensor")
        tensor = value.detach()
        found[str(name)] = tensor.float() if tensor.is_floating_point() else tensor
    return found


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("dnnlib.util", "EasyDict"): dict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Protocol-2 pickles (Python 2's names) say __builtin__ for builtins.
    **{(module, "set"): set for module in ("builtins", "__builtin__")},
    **{(module, "frozenset"): frozenset for module in ("builtins", "__builtin__")},
    ("_codecs", "encode"): _encode,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    # numpy 2 moved numpy.core to numpy._core; pickles name either.
    **{
        (f"{package}.{module}", name): getattr(getattr(np._core, module), name)
        for package in ("numpy.core", "numpy._core")
        for module, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),  # arrays in protocol-5 pickles
        )
    },
}
"""Every global a StyleGAN snapshot may name, and what it resolves to here. Nothing else is
imported while reading a pickle."""


class _Sealed:
    """An allowed Python function as the unpickler hands it out. A pickle may apply BUILD
    to any object it holds, and on a plain function that sets attributes such as
    ``__defaults__``: torch's own rebuilders would keep the file's values for the rest of the
    process. This stand-in has no attributes to set, so such a file fails to load instead."""

    __slots__ = ("_function",)

    def __init__(self, function: Callable[..., Any]) -> None:
        object.__setattr__(self, "_function", function)

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise _Refused(
                f"the pickle wants to load {module}.{name}, which is not data; refused "
                "(only StyleGAN networks, tensors and numpy values are read)"
            )
        # Classes and C functions refuse new attributes by themselves.
        return _Sealed(allowed) if isinstance(allowed, types.FunctionType) else allowed

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("the pickle refers to external objects (persistent ids); refused")
