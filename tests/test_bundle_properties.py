"""Property tests of the bundle manifest parser: whatever valid TOML a manifest holds, loading
it gives a bundle or one UserError, never another exception (a traceback on the exhibition PC
instead of a line naming the file and key).

Manifests are drawn as the committed one with random damage (keys removed, values replaced by
any TOML value, unknown keys added), so that most examples get deep into the parser rather
than stopping at the first key.
"""

from __future__ import annotations

import copy
import math
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import DEFAULT_BUNDLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toml_text import dumps

from installation.engine.bundle import MANIFEST, Bundle, load_bundle
from installation.errors import UserError

BASE = tomllib.loads((DEFAULT_BUNDLE / MANIFEST).read_text())

#: Strings a careless or hostile manifest puts where a file name goes.
PATHS = ["generator.onnx", "../generator.onnx", "/etc/passwd", "outside", "", ".", "sub", "a\0b"]

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(PATHS),
    st.sampled_from(["NCHW", "NHWC", "normal", "uniform", "8f" * 32]),
    st.just(datetime(2020, 1, 2, 3, 4, 5)),
)
#: Key names, control characters included: an error must stay one line whatever the key.
keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)


def tables(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every table of the document that the parser reads keys from."""
    found = [document]
    for value in document.values():
        if isinstance(value, dict):
            found.append(value)
        elif isinstance(value, list):
            found += [item for item in value if isinstance(item, dict)]
    return found


@st.composite
def damaged_manifests(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        table = draw(st.sampled_from(tables(document)))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "add" or not table:
            table[draw(keys)] = draw(values)
            continue
        key = draw(st.sampled_from(sorted(table)))
        if action == "remove":
            del table[key]
        else:
            table[key] = draw(values)
    return document


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle folder whose model files are placeholders: the parser never opens them."""
    root = tmp_path_factory.mktemp("fuzz")
    bundle = root / "bundle"
    (bundle / "sub").mkdir(parents=True)
    for name in ("generator.onnx", "refine-256.onnx", BASE["provenance"]["license_file"]):
        (bundle / name).write_bytes(b"placeholder")
    (root / "secret.onnx").write_bytes(b"outside")
    (bundle / "outside").symlink_to(root / "secret.onnx")
    return bundle


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=damaged_manifests())
def test_any_manifest_loads_or_is_one_user_error(folder: Path, document: dict[str, Any]) -> None:
    text = dumps(document)
    tomllib.loads(text)  # the test's writer makes valid TOML
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    try:
        bundle = load_bundle(folder)
    except UserError as error:
        message = str(error)
        assert message.startswith(str(folder)) and "\n" not in message
        return
    assert isinstance(bundle, Bundle)
    for stage in bundle.stages:
        assert stage.path.resolve().is_relative_to(folder.resolve())
        assert all(math.isfinite(value) for value in stage.range)


#: File names built from the parts that escape a folder or confuse a resolver.
file_names = st.one_of(
    st.lists(
        st.sampled_from(["..", ".", "", "sub", "outside", "generator.onnx", "/", "a\0b", "~"]),
        min_size=1,
        max_size=5,
    ).map("/".join),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=file_names, license_file=file_names)
def test_any_file_name_is_inside_the_bundle_or_one_user_error(
    folder: Path, model: str, license_file: str
) -> None:
    document = copy.deepcopy(BASE)
    document["stages"][0]["file"] = model
    document["provenance"]["license_file"] = license_file
    test_any_manifest_loads_or_is_one_user_error.hypothesis.inner_test(folder, document)
