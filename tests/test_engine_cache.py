"""The engine cache on real files: what it keeps, and every way it refuses a stale engine."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest
from conftest import DEFAULT_BUNDLE

from installation.engine.bundle import load_bundle
from installation.engine.gpu.cuda import GpuInfo
from installation.engine.gpu.engine_cache import (
    MAX_BATCH,
    EngineCache,
    EngineKey,
    StaleEngine,
    default_cache_dir,
    engine_key,
    profile_shapes,
    wanted_keys,
)
from installation.errors import UserError

GPU = GpuInfo("NVIDIA GeForce RTX 4070", "8.9")
TRT = "10.16.1.11"
FP16 = EngineKey(
    onnx_sha256="a" * 64,
    gpu_name=GPU.name,
    compute_capability=GPU.compute_capability,
    tensorrt_version=TRT,
    precision="fp16",
    input_name="z",
    min_shape=(1, 100, 1, 1),
    opt_shape=(1, 100, 1, 1),
    max_shape=(4, 100, 1, 1),
)
FP32 = replace(FP16, precision="fp32")
ENGINE = b"serialized engine " * 1000
REPORT = {"precision": "fp16", "max_abs_error": 0.004, "build_seconds": 12.5}


@pytest.fixture
def cache(tmp_path: Path) -> EngineCache:
    return EngineCache(tmp_path / "engines")


def _changed(value: object) -> object:
    if isinstance(value, tuple):
        return (value[0] + 1, *value[1:])
    return f"{value}x"


@pytest.mark.parametrize("field", [field.name for field in fields(EngineKey)])
def test_every_field_changes_the_digest(field: str) -> None:
    other = replace(FP16, **{field: _changed(getattr(FP16, field))})
    assert other.digest() != FP16.digest()
    assert replace(FP16).digest() == FP16.digest()


def test_store_then_load_gives_the_same_engine_and_records_it(cache: EngineCache) -> None:
    path = cache.store("generator", FP16, ENGINE, REPORT)
    assert path.parent == cache.folder and path.name.startswith("generator-")
    assert cache.load("generator", [FP16, FP32]) == (ENGINE, FP16)

    record = json.loads(path.with_suffix(".json").read_text())
    assert record["key"]["gpu_name"] == GPU.name
    assert record["key"]["max_shape"] == [4, 100, 1, 1]
    assert record["report"] == REPORT
    assert len(record["engine_sha256"]) == 64
    assert sorted(p.name for p in cache.folder.iterdir()) == [
        path.with_suffix(".engine").name,
        path.with_suffix(".json").name,
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"gpu_name": "NVIDIA RTX A2000"}, "built for another GPU (NVIDIA RTX A2000"),
        ({"compute_capability": "8.6"}, "built for another GPU (8.6"),
        ({"tensorrt_version": "10.3.0"}, "another TensorRT version (10.3.0, this is 10.16.1.11)"),
        ({"onnx_sha256": "b" * 64}, "the ONNX file changed"),
        ({"max_shape": (8, 100, 1, 1)}, "another input (max_shape"),
    ],
)
def test_an_engine_built_for_something_else_is_refused(
    cache: EngineCache, change: dict[str, object], reason: str
) -> None:
    cache.store("generator", replace(FP16, **change), ENGINE, REPORT)
    with pytest.raises(StaleEngine) as info:
        cache.load("generator", [FP16, FP32])
    assert reason in str(info.value)
    assert "generator" in str(info.value)


def test_an_engine_of_another_precision_than_wanted_is_refused(cache: EngineCache) -> None:
    cache.store("generator", FP32, ENGINE, REPORT)
    with pytest.raises(StaleEngine, match=r"another precision \(fp32\)"):
        cache.load("generator", [FP16])


def test_a_sidecar_edited_to_claim_this_gpu_is_refused(cache: EngineCache) -> None:
    """An engine whose record was changed by hand does not sit at the name its key gives."""
    path = cache.store("generator", replace(FP16, gpu_name="Tesla T4"), ENGINE, REPORT)
    sidecar = path.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["key"]["gpu_name"] = GPU.name
    sidecar.write_text(json.dumps(record))
    with pytest.raises(StaleEngine, match="was changed after the build"):
        cache.load("generator", [FP16, FP32])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_engine_file_is_refused(cache: EngineCache, damage: str) -> None:
    path = cache.store("generator", FP16, ENGINE, REPORT)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2 :]
    else:
        data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StaleEngine, match="corrupt or truncated"):
        cache.load("generator", [FP16, FP32])


def test_a_missing_engine_file_or_unreadable_record_is_refused(cache: EngineCache) -> None:
    path = cache.store("generator", FP16, ENGINE, REPORT)
    path.unlink()
    with pytest.raises(StaleEngine, match="engine file is missing"):
        cache.load("generator", [FP16])
    cache.store("generator", FP16, ENGINE, REPORT)
    path.with_suffix(".json").write_text('{"key": ')
    with pytest.raises(StaleEngine, match="unreadable"):
        cache.load("generator", [FP16])


def test_a_stage_never_built_says_what_to_run(cache: EngineCache) -> None:
    with pytest.raises(StaleEngine) as info:
        cache.load("generator", [FP16, FP32])
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "never built" in message and "build-engines" in message and "\n" not in message


def test_fp16_is_preferred_when_both_are_present(cache: EngineCache, tmp_path: Path) -> None:
    fp32 = cache.store("generator", FP32, b"fp32 engine", REPORT)
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in (fp32, fp32.with_suffix(".json")):
        shutil.copy(path, kept)
    cache.store("generator", FP16, b"fp16 engine", REPORT)
    for path in kept.iterdir():
        shutil.copy(path, cache.folder)
    assert len(list(cache.folder.iterdir())) == 4
    assert cache.load("generator", [FP16, FP32]) == (b"fp16 engine", FP16)
    assert cache.load("generator", [FP32, FP16]) == (b"fp32 engine", FP32)


def test_store_removes_the_stages_other_entries_only(cache: EngineCache) -> None:
    cache.store("refine-256", FP16, ENGINE, REPORT)
    cache.store("refine-256", FP32, ENGINE, REPORT)
    # "refine" is a prefix of "refine-256": storing it must leave the other stage alone.
    cache.store("refine", FP16, ENGINE, REPORT)
    assert cache.load("refine-256", [FP16, FP32]) == (ENGINE, FP32)

    newer = replace(FP32, onnx_sha256="c" * 64)
    path = cache.store("refine-256", newer, ENGINE, REPORT)
    names = sorted(p.name for p in cache.folder.iterdir())
    assert len(names) == 4
    assert path.name in names and path.with_suffix(".json").name in names
    assert cache.load("refine", [FP16]) == (ENGINE, FP16)
    with pytest.raises(StaleEngine, match="the ONNX file changed"):
        cache.load("refine-256", [FP32])


def test_store_replaces_the_same_key_in_place(cache: EngineCache) -> None:
    cache.store("generator", FP16, b"first", REPORT)
    cache.store("generator", FP16, b"second", REPORT)
    assert len(list(cache.folder.iterdir())) == 2
    assert cache.load("generator", [FP16]) == (b"second", FP16)


def test_default_cache_dir_honours_xdg_cache_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/installation")
    assert default_cache_dir() == Path("/var/cache/installation/installation/engines")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / ".cache" / "installation" / "engines"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert default_cache_dir() == tmp_path / ".cache" / "installation" / "engines"


def test_profiles_cover_the_runtime_batches_or_the_fixed_one() -> None:
    assert profile_shapes((3, 64, 64)) == ((1, 3, 64, 64), (1, 3, 64, 64), (MAX_BATCH, 3, 64, 64))
    assert profile_shapes((3, 64, 64), fixed_batch=1) == ((1, 3, 64, 64),) * 3


def test_wanted_keys_are_fp16_first_for_this_stage_gpu_and_tensorrt() -> None:
    spec = load_bundle(DEFAULT_BUNDLE).stages[1]
    keys = wanted_keys(spec, GPU, TRT)
    assert [key.precision for key in keys] == ["fp16", "fp32", "fp16", "fp32"]
    assert keys[0] == engine_key(spec, GPU, TRT, "fp16")
    assert keys[0].onnx_sha256 == spec.sha256 and keys[0].input_name == spec.input_name
    assert keys[0].max_shape == (MAX_BATCH, *spec.input_shape)
    assert keys[2].max_shape == (1, *spec.input_shape)


def test_timing_cache_is_per_gpu_and_tensorrt_version(cache: EngineCache) -> None:
    here = cache.timing_cache_path(GPU, TRT)
    assert here.parent == cache.folder
    assert here != cache.timing_cache_path(GpuInfo("NVIDIA RTX A2000", "8.6"), TRT)
    assert here != cache.timing_cache_path(GPU, "10.3.0")
