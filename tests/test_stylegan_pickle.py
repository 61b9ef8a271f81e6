"""The safe StyleGAN pickle loader: data comes back, code never runs, anything else is refused.

Pickles are written by ``tests/stylegan_fixtures.py`` in NVIDIA's persistence structure (with
our own stand-ins for the global names), from small hand-made network trees, so these tests
need neither NVIDIA's code nor our generators.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from stylegan_fixtures import Reduced, source_that_writes, write_snapshot

from export.stylegan_pickle import PickledModule, load_network
from installation.cli import main
from installation.errors import UserError


def small_generator() -> PickledModule:
    """A two-level tree with the value kinds a real G_ema holds: parameters, buffers, numpy
    attributes (StyleGAN3 keeps sizes as arrays), nested configuration dicts, positional
    constructor arguments."""
    torch.manual_seed(0)
    layer = PickledModule(
        class_name="FullyConnectedLayer",
        init_kwargs={"activation": "lrelu", "lr_multiplier": 0.01},
        attributes={"in_features": 8, "activation": "lrelu", "size": np.asarray([4, 4])},
        parameters={"weight": torch.randn(8, 8), "bias": torch.randn(8)},
        buffers={},
        children={},
        source_sha256=None,
        init_args=(8, 8),
    )
    return PickledModule(
        class_name="Generator",
        init_kwargs={"z_dim": 8, "img_resolution": 32, "mapping_kwargs": {"num_layers": 1}},
        attributes={"z_dim": 8, "sampling_rate": np.float64(16.0), "layers": [1, 2]},
        parameters={},
        buffers={"w_avg": torch.randn(8)},
        children={"fc0": layer},
        source_sha256=None,
    )


def test_a_snapshot_reads_back_as_data(tmp_path: Path) -> None:
    tree = small_generator()
    path = write_snapshot(tmp_path / "snapshot.pkl", tree, module_src="class Generator: pass\n")
    loaded = load_network(path)
    assert loaded.class_name == "Generator"
    assert loaded.init_kwargs == tree.init_kwargs
    assert type(loaded.init_kwargs["mapping_kwargs"]) is dict
    assert loaded.attributes.keys() == tree.attributes.keys()
    assert loaded.attributes["sampling_rate"] == 16.0
    layer = loaded.children["fc0"]
    assert np.array_equal(layer.attributes["size"], [4, 4])
    assert layer.init_args == (8, 8)
    assert set(loaded.tensors()) == {"w_avg", "fc0.weight", "fc0.bias"}
    for name, tensor in tree.tensors().items():
        assert torch.equal(loaded.tensors()[name], tensor), name
        assert loaded.tensors()[name].dtype == torch.float32
    expected = hashlib.sha256(b"class Generator: pass\n").hexdigest()
    assert loaded.sources() == {"Generator": expected, "FullyConnectedLayer": expected}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol_reads(tmp_path: Path, protocol: int) -> None:
    """Snapshots of 2020 (protocol 3) and later (4) both exist; 2 and 5 cost nothing."""
    path = write_snapshot(tmp_path / "snapshot.pkl", small_generator(), protocol=protocol)
    assert torch.equal(
        load_network(path).tensors()["fc0.weight"], small_generator().tensors()["fc0.weight"]
    )


def test_module_src_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    source = source_that_writes(marker)
    exec(compile(source, "proof", "exec"), {})  # the source really would write the file
    assert marker.exists()
    marker.unlink()
    path = write_snapshot(tmp_path / "snapshot.pkl", small_generator(), module_src=source)
    assert load_network(path).source_sha256
    assert not marker.exists()


def test_an_extra_global_is_refused_by_name(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    payload = Reduced(os.system, f"touch {marker}")
    path = write_snapshot(tmp_path / "evil.pkl", small_generator(), extra={"progress": payload})
    with pytest.raises(UserError) as caught:
        load_network(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert f"{os.system.__module__}.system" in message
    assert not marker.exists()


def test_a_storage_that_is_not_data_is_refused(tmp_path: Path) -> None:
    """A tensor's storage is a nested torch.save file: torch's safe loader reads it, and its
    refusal comes back as one line naming the global."""
    inner = io.BytesIO()
    torch.save(Reduced(os.getcwd), inner, _use_new_zipfile_serialization=False)
    payload = Reduced(torch.storage._load_from_bytes, inner.getvalue())
    path = write_snapshot(tmp_path / "evil.pkl", small_generator(), extra={"stats": payload})
    with pytest.raises(UserError, match=r"not plain data: .*getcwd") as caught:
        load_network(path)
    assert "\n" not in str(caught.value)


def test_the_cli_refuses_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = Reduced(os.system, "true")
    path = write_snapshot(tmp_path / "evil.pkl", small_generator(), extra={"progress": payload})
    code = main(["export", "stylegan", str(path), "--out", str(tmp_path / "b"), "--license", "x"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(path) in err and ".system" in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 not a pickle", "not a readable pickle"),
        (pickle.dumps([1, 2, 3]), "holds a list, not a snapshot dict"),
        (pickle.dumps({"G": 1, "D": 2}), "no 'G_ema'"),
        (pickle.dumps({"G": 1, "D": 2, "G_ema": 3}), "'G_ema' is int, not a network"),
    ],
)
def test_files_that_are_not_snapshots(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "thing.pkl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as caught:
        load_network(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_truncated_snapshot_is_one_line(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "snapshot.pkl", small_generator())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or damaged") as caught:
        load_network(path)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_network(tmp_path / "absent.pkl")


def test_a_pickle_cannot_change_an_allowed_function(tmp_path: Path) -> None:
    """BUILD on a global sets attributes of whatever it was given: on torch's rebuilder it
    would leave new defaults (tensor metadata) for every later load in the process."""
    rebuild = torch._utils._rebuild_tensor_v2
    defaults = rebuild.__defaults__
    # The rebuilder, then BUILD with slot state {"__defaults__": ({"planted": 1},)}, then {}.
    payload = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(N}(V__defaults__\n(}(Vplanted\nK\x01ututb0}."
    )
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    try:
        with pytest.raises(UserError, match="not a readable pickle") as caught:
            load_network(path)
        assert rebuild.__defaults__ == defaults
    finally:
        rebuild.__defaults__ = defaults
    assert str(caught.value).startswith(f"{path}: ")
