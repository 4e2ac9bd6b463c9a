"""JPEG photos decoded small: time per photo and distance from the full decode.

    .venv/bin/python benchmarks/decode_small.py [../shared/data/ccp9/val/images] [--scale 0.18]

For the first `--count` JPEGs of the folder, on one thread, each then shrunk to `--scale` by
the dataset's antialiased resize (`segtutor.data._resize`): the full decode ("full"), what
`SegmentationDataset` does, `decode_image(path, shrink_to=...)` ("twice"), and a decode at
the smallest size still as large as the target ("target"). Prints
milliseconds per photo and the mean absolute difference (0-255) from the full decode.
docs/benchmarks.md ("Decoding large photos small") quotes it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from segtutor.data import _resize
from segtutor.formats import decode_image
from segtutor.transforms import scaled_size

__all__ = ["main"]


def _shrunk(path: Path, scale: float, way: str) -> torch.Tensor:
    """The photo at `scale`: decoded in full ("full"), small ("twice") or at the target ("target")."""
    with Image.open(path) as img:  # reads the header only
        width, height = img.size
    size = scaled_size(height, width, scale)
    if way == "full":
        image = decode_image(path)
    else:  # decode_image keeps twice what it is asked for: ask for half the target for "target"
        ask = size if way == "twice" else (-(-size[0] // 2), -(-size[1] // 2))
        image = decode_image(path, shrink_to=ask)
    return _resize(torch.from_numpy(image).permute(2, 0, 1), size)


def main() -> None:
    """Time the three ways on the same photos; print a line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="../shared/data/ccp9/val/images")
    parser.add_argument("--scale", type=float, default=0.18)
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as SegmentationDataset decodes (segtutor.data.one_thread)
    paths = sorted(p for p in Path(args.folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    paths = paths[: args.count]
    if not paths:
        raise SystemExit(f"no JPEG in {args.folder}")
    reference = [_shrunk(p, args.scale, "full").float() for p in paths]
    for way in ("full", "twice", "target"):
        start = time.perf_counter()
        results = [_shrunk(path, args.scale, way) for path in paths]
        elapsed = time.perf_counter() - start
        diff = sum(
            (r.float() - ref).abs().mean().item() for r, ref in zip(results, reference, strict=True)
        )
        print(
            f"decoded {way:6}  {1000 * elapsed / len(paths):5.2f} ms/photo  "
            f"mean |diff| from full {diff / len(paths):.2f}"
        )


if __name__ == "__main__":
    main()
