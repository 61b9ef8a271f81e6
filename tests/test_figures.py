"""The held-out figures (export/figures.py): each checked against a value worked out another way
(by hand, or by a plain loop over SSIM's windows), the held-out set against the photographs it
was cut from, and the face figure on the default bundle's real faces through ONNX Runtime."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DEFAULT_BUNDLE
from PIL import Image
from torch.nn import functional as F

from export.degrade import gaussian_blur
from export.figures import (
    FaceDetector,
    baselines,
    best_epoch,
    high_frequency_energy,
    holdout_set,
    merit,
    psnr,
    sharpness,
    ssim,
    upscale_figures,
)
from export.image_folder import load_images
from installation.engine.backend import CPU, OnnxRuntimeBackend
from installation.engine.bundle import load_bundle
from installation.errors import UserError
from installation.score.trajectory import keyframe

TILE = 32
SCALE = 4


def _photos(folder: Path) -> Path:
    """Two small photographs with smooth shapes and fine texture, as PNG files."""
    rng = np.random.default_rng(5)
    folder.mkdir()
    for name, (height, width) in (("a.png", (48, 64)), ("b.png", (32, 48))):
        y, x = np.mgrid[0:height, 0:width]
        smooth = 0.5 + 0.4 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None]
        pixels = smooth + 0.08 * rng.standard_normal((height, width, 3))
        Image.fromarray((pixels.clip(0, 1) * 255).astype(np.uint8)).save(folder / name)
    return folder


@pytest.fixture
def holdout(tmp_path: Path):
    return holdout_set(load_images(_photos(tmp_path / "photos"), TILE), TILE, SCALE, 3, 2)


def test_merit_ranks_sharpness_by_closeness_to_one_and_missing_values_last() -> None:
    assert merit("sharpness", 1.0) == 0.0
    assert merit("sharpness", 0.5) == pytest.approx(merit("sharpness", 2.0))
    assert merit("sharpness", 0.9) > merit("sharpness", 0.5)
    assert merit("sharpness", 0.0) > -math.inf
    assert merit("psnr", 24.5) == 24.5
    assert merit("faces", None) == merit("ssim", math.nan) == -math.inf
    with pytest.raises(ValueError, match="unknown figure 'loss'"):
        merit("loss", 1.0)


def test_best_epoch_takes_the_highest_merit_and_the_later_of_equals() -> None:
    epochs = [
        {"epoch": 1, "psnr": 23.0, "faces": 0.75, "sharpness": 0.4},
        {"epoch": 2, "psnr": 24.0, "faces": 0.75, "sharpness": 3.0},
        {"epoch": 3, "psnr": 23.5, "faces": None, "sharpness": 1.5},
    ]
    assert best_epoch(epochs, "psnr")["epoch"] == 2
    assert best_epoch(epochs, "faces")["epoch"] == 2
    assert best_epoch(epochs, "sharpness")["epoch"] == 3
    with pytest.raises(ValueError):
        best_epoch([], "psnr")


def test_psnr_of_a_known_error() -> None:
    a = torch.zeros(3, 16, 16)
    b = torch.full((3, 16, 16), 10 / 255)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(a, a) == math.inf
    # Rounded to 8 bits first: a difference under half a level is no difference.
    assert psnr(a, torch.full((3, 16, 16), 0.4 / 255)) == math.inf
    # A batch gives the mean of each pair's PSNR.
    pair = torch.stack([a, a]), torch.stack([b, torch.full((3, 16, 16), 20 / 255)])
    assert psnr(*pair) == pytest.approx(10 * math.log10(255**2 / 100) - 10 * math.log10(2))


def test_ssim_of_identical_and_of_constant_images_by_hand() -> None:
    image = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(1))
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-5)
    # Flat images have no variance: only the luminance term is left, worked out by hand.
    c1 = (0.01 * 255) ** 2
    by_hand = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(torch.full((3, 16, 16), 100 / 255), torch.full((3, 16, 16), 120 / 255)) == (
        pytest.approx(by_hand, abs=1e-5)
    )


def test_ssim_matches_a_plain_loop_over_every_window() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (3, 14, 15)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 30, a.shape), 0, 255).round()
    offsets = np.arange(11) - 5
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for channel in range(3):
        for top in range(14 - 10):
            for left in range(15 - 10):
                x = a[channel, top : top + 11, left : left + 11]
                y = b[channel, top : top + 11, left : left + 11]
                mx, my = (window * x).sum(), (window * y).sum()
                vx, vy = (window * (x - mx) ** 2).sum(), (window * (y - my) ** 2).sum()
                cov = (window * (x - mx) * (y - my)).sum()
                values.append(
                    (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
                )
    expected = float(np.mean(values))
    assert ssim(torch.from_numpy(a / 255), torch.from_numpy(b / 255)) == (
        pytest.approx(expected, abs=1e-4)
    )
    assert 0.2 < expected < 0.99


def test_holdout_tiles_are_the_photographs_cut_overlapping_by_half(tmp_path: Path) -> None:
    folder = _photos(tmp_path / "photos")
    photos = load_images(folder, TILE)
    held = holdout_set(photos, TILE, SCALE, 3, 2)
    # a.png (48x64): 2x3 tiles, b.png (32x48): 1x2; each taken twice.
    assert held.photo_of_tile == ["a.png"] * 12 + ["b.png"] * 4
    assert held.photos == ["a.png", "b.png"]
    assert held.tiles.dtype == torch.uint8
    assert held.tiles.shape == (16, 3, TILE, TILE)
    assert held.small.shape == (16, 3, TILE // SCALE, TILE // SCALE)
    a = photos.images[0]
    assert torch.equal(held.tiles[5], a[:, 16:48, 32:64])
    assert torch.equal(held.tiles[6], held.tiles[0])
    # The two takes of a tile are degraded differently, but the same seed draws the same set.
    assert not torch.equal(held.small[6], held.small[0])
    again = holdout_set(photos, TILE, SCALE, 3, 2)
    assert torch.equal(again.small, held.small)
    assert not torch.equal(holdout_set(photos, TILE, SCALE, 4, 2).small, held.small)


def test_upscale_figures_per_photograph_and_over_all_tiles(holdout) -> None:
    def bicubic(small: torch.Tensor) -> torch.Tensor:
        return F.interpolate(small, scale_factor=SCALE, mode="bicubic")

    figures = upscale_figures(bicubic, holdout, batch=5)
    assert list(figures) == ["all", "a.png", "b.png"]
    assert figures == upscale_figures(bicubic, holdout, batch=16)
    assert figures == baselines(holdout, batch=3)["bicubic"]
    for name in ("psnr", "ssim"):
        weighted = (12 * figures["a.png"][name] + 4 * figures["b.png"][name]) / 16
        assert figures["all"][name] == pytest.approx(weighted)
    tiles = holdout.tiles.float() / 255
    assert figures["b.png"]["psnr"] == pytest.approx(psnr(bicubic(holdout.small[12:]), tiles[12:]))
    assert figures["a.png"]["ssim"] == pytest.approx(ssim(bicubic(holdout.small[:12]), tiles[:12]))
    with pytest.raises(ValueError, match="upscaled images are"):
        upscale_figures(lambda small: small, holdout)


def test_sharpness_is_one_for_the_photographs_below_when_blurred_above_with_noise(holdout) -> None:
    tiles = holdout.tiles.float() / 255
    noisy = tiles + 0.1 * torch.randn(tiles.shape, generator=torch.Generator().manual_seed(0))
    detail = high_frequency_energy(holdout.tiles)
    assert sharpness(holdout.tiles, detail) == 1.0
    assert sharpness(tiles, detail) == 1.0
    blurred = sharpness(gaussian_blur(tiles, 1.5), detail)
    noise = sharpness(noisy, detail)
    assert blurred < 0.5
    assert noise > 1.2
    assert merit("sharpness", blurred) < merit("sharpness", 1.0)
    assert merit("sharpness", noise) < merit("sharpness", 1.0)
    # A diverged run's NaN pictures count as black: no detail, ranked below any blur.
    assert sharpness(torch.full_like(tiles, math.nan), detail) == 0.0
    assert merit("sharpness", 0.0) < merit("sharpness", blurred)


def test_no_face_in_noise_or_grey_and_one_in_a_face_of_the_default_bundle() -> None:
    detector = FaceDetector()
    noise = torch.rand(4, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    assert detector.frontal_faces(noise) == [0, 0, 0, 0]
    assert detector.frontal_faces(torch.full((1, 3, 256, 256), 0.5)) == [0]
    bundle = load_bundle(DEFAULT_BUNDLE)
    backend = OnnxRuntimeBackend(CPU, threads=0)
    generator, refine = (backend.load(spec.path) for spec in bundle.stages)
    latent = keyframe(0, 0, bundle.latent_size, bundle.latent_distribution)
    face = refine.run(generator.run(latent.reshape(1, -1, 1, 1)))
    assert detector.frontal_faces((face + 1) / 2) == [1]


def test_a_missing_opencv_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(UserError, match=r"pip install -e '\.\[export\]'") as raised:
        FaceDetector()
    assert "\n" not in str(raised.value)
