"""Read the gan-face-generate generator weights, from its wheel or from a bare checkpoint.

The package's wheel carries the weights as ``gan_face_generate/weights.tar`` (a torch
checkpoint) and its MIT licence in the dist-info, so the wheel from PyPI is the most faithful
thing to import: one file, with a known sha256, that also gives us the licence text the
bundle must carry. Checkpoints are loaded with ``weights_only=True``: a downloaded pickle must
never run code on the workshop machine. Every failure is a ``UserError`` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import torch

from installation.errors import UserError

PACKAGE = "gan-face-generate"
WEIGHTS_MEMBER = "gan_face_generate/weights.tar"
STATE_KEY = "netG_state_dict"


@dataclass(frozen=True)
class Checkpoint:
    """A generator state dict and what the bundle's provenance needs to say about it.

    ``member`` is the weights' path inside the wheel; it, ``version`` and ``license_text``
    are None when the user gave a bare checkpoint.
    """

    path: Path
    sha256: str
    state_dict: dict[str, torch.Tensor]
    member: str | None = None
    version: str | None = None
    license_text: str | None = None

    @property
    def label(self) -> str:
        """How error messages name the weights: the file, and the member inside a wheel."""
        return f"{self.path} ({self.member})" if self.member else str(self.path)


def load_checkpoint(path: Path) -> Checkpoint:
    """Load the generator state dict from a gan-face-generate ``.whl`` or a bare checkpoint."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if path.suffix != ".whl":
        state = _state_dict(data, str(path))
        return Checkpoint(path, sha256, state)
    try:
        wheel = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UserError(f"{path}: not a wheel (not a zip file)") from None
    with wheel:
        version = _wheel_version(wheel, path)
        license_text = _read_text(wheel, path, _license_member(wheel, path))
        weights = _read(wheel, path, WEIGHTS_MEMBER)
    state = _state_dict(weights, f"{path} ({WEIGHTS_MEMBER})")
    return Checkpoint(path, sha256, state, WEIGHTS_MEMBER, version, license_text)


def _state_dict(data: bytes, label: str) -> dict[str, torch.Tensor]:
    # torch.load raises anything from IndexError to RuntimeError on a file that is not a
    # checkpoint, and its messages run to paragraphs; the exception type is enough of a clue.
    try:
        content = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as error:
        raise UserError(
            f"{label}: cannot load as a torch checkpoint: damaged, not a checkpoint, or holding "
            f"Python objects that safe loading refuses ({type(error).__name__})"
        ) from None
    if not isinstance(content, dict) or STATE_KEY not in content:
        keys = ", ".join(map(str, content)) if isinstance(content, dict) else "not a dict"
        raise UserError(f"{label}: no key {STATE_KEY!r} in the checkpoint (found: {keys})")
    state = content[STATE_KEY]
    if not isinstance(state, dict):
        raise UserError(f"{label}: {STATE_KEY!r} is {type(state).__name__}, not a state dict")
    return state


def _wheel_version(wheel: zipfile.ZipFile, path: Path) -> str:
    """Version from the wheel's METADATA, after checking the wheel is gan-face-generate's."""
    text = _read_text(wheel, path, f"{_dist_info(wheel, path)}METADATA")
    metadata = HeaderParser().parsestr(text)
    name = (metadata["Name"] or "").lower().replace("_", "-")
    if name != PACKAGE:
        raise UserError(f"{path}: a wheel of {metadata['Name']!r}, expected {PACKAGE}")
    if not metadata["Version"]:
        raise UserError(f"{path}: no Version in the wheel's METADATA")
    return metadata["Version"]


def _dist_info(wheel: zipfile.ZipFile, path: Path) -> str:
    folders = {name.split("/")[0] + "/" for name in wheel.namelist()}
    found = sorted(folder for folder in folders if folder.endswith(".dist-info/"))
    if len(found) != 1:
        raise UserError(f"{path}: not a wheel (expected one .dist-info folder, found {len(found)})")
    return found[0]


def _license_member(wheel: zipfile.ZipFile, path: Path) -> str:
    """The licence file: ``licenses/LICENSE`` in current wheels, ``LICENSE`` in older ones."""
    dist_info = _dist_info(wheel, path)
    names = set(wheel.namelist())
    for member in (f"{dist_info}licenses/LICENSE", f"{dist_info}LICENSE"):
        if member in names:
            return member
    raise UserError(f"{path}: no licence file in {dist_info}; the bundle must carry one")


def _read(wheel: zipfile.ZipFile, path: Path, member: str) -> bytes:
    try:
        return wheel.read(member)
    except KeyError:
        raise UserError(f"{path}: no {member} in this wheel") from None
    except (zipfile.BadZipFile, zlib.error, OSError) as error:
        raise UserError(f"{path}: damaged wheel, cannot read {member} ({error})") from None


def _read_text(wheel: zipfile.ZipFile, path: Path, member: str) -> str:
    try:
        return _read(wheel, path, member).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: {member} is not UTF-8 text") from None
