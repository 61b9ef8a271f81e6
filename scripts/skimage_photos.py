"""Extract the default refinement stage's training and held-out photographs from
scikit-image's wheel, and write DATA.md saying exactly what they are and under which terms.

scikit-image ships a few sample photographs inside its wheel, each with its licence in
``skimage/data/_fetchers.py``; they are the only photographs this project may train on without
downloading anything but a registry package. Only those whose terms are clear (public domain,
CC0, or "no known copyright restrictions") are used. The astronaut portrait, the one human
face among them, and the coffee cup are held out for the PSNR benchmark, never trained on.

    pip download --no-deps scikit-image==0.26.0 -d /tmp/skw
    python scripts/skimage_photos.py /tmp/skw/scikit_image-0.26.0-*.whl /tmp/photos
"""

from __future__ import annotations

import argparse
import hashlib
import zipfile
from pathlib import Path

PHOTOS = {
    # file: (split, subject, terms as scikit-image's data module states them)
    "chelsea.png": ("train", "Chelsea the cat", "CC0, photographer Stefan van der Walt"),
    "rocket.jpg": ("train", "DSCOVR launch on Falcon 9", "public domain, released by SpaceX"),
    "hubble_deep_field.jpg": ("train", "Hubble eXtreme Deep Field", "public domain, NASA"),
    "retina.jpg": ("train", "human retina (Mikael Haggstrom)", "CC0 1.0, via Wikimedia Commons"),
    "ihc.png": ("train", "immunohistochemistry stain (CMMI)", "no known copyright restrictions"),
    "camera.png": ("train", "man with a camera (grey)", "CC0, photographer Lav Varshney"),
    "brick.png": ("train", "brick wall (grey)", "CC0, CC0Textures"),
    "grass.png": ("train", "grass (grey)", "CC0, linolafett on DeviantArt"),
    "gravel.png": ("train", "gravel (grey)", "CC0, CC0Textures"),
    "astronaut.png": ("heldout", "astronaut Eileen Collins", "public domain, NASA"),
    "coffee.png": ("heldout", "coffee cup", "CC0, photographer Rachel Michetti"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="scikit_image-*.whl")
    parser.add_argument("out", type=Path, help="folder for train/, heldout/ and DATA.md")
    args = parser.parse_args()
    wheel_sha = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    lines = [
        "# Photographs the default refinement stage was trained and benchmarked on",
        "",
        f"All from `skimage/data/` inside `{args.wheel.name}` (PyPI, sha256 {wheel_sha}).",
        "Terms as stated in the wheel's `skimage/data/_fetchers.py`.",
        "",
        "| file | split | subject | terms | sha256 |",
        "|---|---|---|---|---|",
    ]
    with zipfile.ZipFile(args.wheel) as archive:
        for name, (split, subject, terms) in PHOTOS.items():
            data = archive.read(f"skimage/data/{name}")
            target = args.out / split / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            lines.append(f"| {name} | {split} | {subject} | {terms} | {digest} |")
    (args.out / "DATA.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"photographs written to {args.out}")


if __name__ == "__main__":
    main()
