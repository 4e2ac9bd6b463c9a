"""Make `data_samples/nuclei`: a small, real subset of the 2018 Data Science Bowl nuclei.

Run from the repository root (the source is the binary-mask version of BBBC038 stage1_train
described in its README.txt; the default is where the course's shared data lives):

    python data_samples/make_nuclei.py [SOURCE] [--out data_samples/nuclei]

SOURCE holds `train/{images,masks}` and `val/{images,masks}` (PNG, paired by stem, masks 0/1).
The output is segtutor's folder format, `train/` and `val/` with `images/` and `masks/`, plus
`dataset.json`, `sources.csv` (where every file came from) and `README.md`. The same source gives
the same bytes: nothing here is random, and files are listed in sorted order.

What it does, and why:

1. Sorts every source image into one of three kinds, from its colours alone (never its mask):
   grey images (R = G = B everywhere) with a dark background are fluorescence, grey images with
   a light background are brightfield, colour images are stained tissue (histology). The kinds
   look nothing alike, so a subset that lacks one would hide the dataset's hardest part.
2. Takes a fixed number of each kind, spread over the kind's image sizes (the sizes tell the
   experiments apart), and sends every fourth one to `val/`, so both splits hold every kind.
   The upstream train/val split is not kept: its val has no brightfield image.
3. Crops each image and its mask to at most 256x256 px, at native resolution: resizing would
   change the nuclei's size in pixels (the thing a model learns), and resizing a mask needs
   nearest-neighbour and still moves its edges; a crop keeps both exact. Of nine evenly placed
   windows (corners, edge middles, centre) it keeps the one with the most nucleus pixels, so
   that no crop is empty.
4. Writes grey images as 8-bit greyscale PNGs (a third of the bytes; segtutor reads them as RGB)
   and colour images as RGB PNGs; masks as 8-bit PNGs of 0 (background) and 1 (nucleus).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "nuclei"
DEFAULT_OUT = REPO / "data_samples" / "nuclei"

# How many images of each kind the subset takes (every fourth of them goes to val/).
COUNTS = {"fluorescence": 48, "brightfield": 12, "histology": 20}
CROP = 256  # the largest side of a bundled image, in pixels
VAL_EVERY = 4  # the 4th, 8th, ... image of each kind goes to val/
CLASS_NAMES = ["background", "nucleus"]
PALETTE = [[0, 0, 0], [240, 228, 66]]


def image_kind(rgb: np.ndarray) -> str:
    """ "fluorescence", "brightfield" or "histology" for one uint8 image `(H, W, 3)`."""
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    if not grey:
        return "histology"
    # Fluorescence: bright nuclei on black; brightfield: dark nuclei on a bright field.
    return "fluorescence" if float(np.median(rgb[..., 0])) < 128 else "brightfield"


def crop_box(mask: np.ndarray, size: int = CROP) -> tuple[int, int, int, int]:
    """`(left, top, right, bottom)` of the window of at most `size` px with most nucleus pixels.

    Nine candidates (corners, edge middles, centre); ties go to the first, top-left first.
    """
    height, width = mask.shape
    ch, cw = min(size, height), min(size, width)
    tops = sorted({0, (height - ch) // 2, height - ch})
    lefts = sorted({0, (width - cw) // 2, width - cw})
    boxes = [(left, top, left + cw, top + ch) for top in tops for left in lefts]
    counts = [int(mask[top:bottom, left:right].sum()) for left, top, right, bottom in boxes]
    return boxes[int(np.argmax(counts))]


def list_source(source: Path) -> list[dict]:
    """Every image of the source with its kind and size, sorted by split and stem."""
    rows = []
    for split in ("train", "val"):
        for path in sorted((source / split / "images").glob("*.png")):
            mask_path = source / split / "masks" / path.name
            if not mask_path.is_file():
                raise SystemExit(f"{mask_path}: missing (every source image needs its mask)")
            with Image.open(path) as img:
                rgb = np.asarray(img.convert("RGB"))
            rows.append(
                {
                    "image_id": path.stem,
                    "source_split": split,
                    "image_path": path,
                    "mask_path": mask_path,
                    "kind": image_kind(rgb),
                    "width": rgb.shape[1],
                    "height": rgb.shape[0],
                }
            )
    if not rows:
        raise SystemExit(f"{source}: no train/images/*.png or val/images/*.png here")
    return rows


def choose(rows: list[dict], counts: dict[str, int] = COUNTS) -> list[dict]:
    """`counts[kind]` rows of each kind, spread evenly over the kind's sizes; each gets a split."""
    chosen = []
    for kind, count in counts.items():
        pool = sorted(
            (r for r in rows if r["kind"] == kind),
            key=lambda r: (r["width"], r["height"], r["image_id"]),
        )
        if len(pool) < count:
            raise SystemExit(f"only {len(pool)} {kind} images in the source; {count} wanted")
        picks = np.linspace(0, len(pool) - 1, count).round().astype(int)
        for i, at in enumerate(picks, start=1):
            row = dict(pool[at], split="val" if i % VAL_EVERY == 0 else "train")
            row["stem"] = f"{kind}_{row['image_id'][:12]}"
            chosen.append(row)
    stems = [r["stem"] for r in chosen]
    if len(set(stems)) != len(stems):
        raise SystemExit("two chosen images share a stem; lengthen the id prefix")
    return chosen


def png_bytes(array: np.ndarray) -> bytes:
    """A PNG of `array` (`(H, W)` greyscale or `(H, W, 3)` RGB uint8), compressed the most."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_pair(row: dict, out: Path) -> dict:
    """Crop one image and its mask, write both; return its line of `sources.csv`."""
    with Image.open(row["image_path"]) as img:
        rgb = np.asarray(img.convert("RGB"))  # (H, W, 3) uint8
    with Image.open(row["mask_path"]) as img:
        mask = np.asarray(img)  # (H, W) uint8, 0/1
    if mask.shape != rgb.shape[:2] or not set(np.unique(mask).tolist()) <= {0, 1}:
        raise SystemExit(f"{row['mask_path']}: expected a 0/1 mask the size of its image")
    left, top, right, bottom = crop_box(mask)
    rgb, mask = rgb[top:bottom, left:right], mask[top:bottom, left:right]
    image = rgb[..., 0] if row["kind"] != "histology" else rgb  # grey: one channel is enough
    for folder, array in (("images", image), ("masks", mask)):
        path = out / row["split"] / folder / f"{row['stem']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(np.ascontiguousarray(array)))
    return {
        "split": row["split"],
        "stem": row["stem"],
        "kind": row["kind"],
        "image_id": row["image_id"],
        "source_split": row["source_split"],
        "source_size": f"{row['width']}x{row['height']}",
        "crop_box": f"{left},{top},{right},{bottom}",
        "nucleus_share": f"{float(mask.mean()):.4f}",
    }


def write_metadata(out: Path, lines: list[dict]) -> None:
    """`dataset.json` and `sources.csv`."""
    meta = {
        "name": "nuclei",
        "class_names": CLASS_NAMES,
        "palette": PALETTE,
        "ignore_index": 255,
        "description": (
            "Real microscopy: 2018 Data Science Bowl nuclei (BBBC038, CC0), fluorescence, "
            "brightfield and stained-tissue images cropped to 256x256 at native resolution; "
            "made by data_samples/make_nuclei.py (see README.md)."
        ),
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    with (out / "sources.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(lines[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(lines, key=lambda r: (r["split"], r["stem"])))


def make(source: Path, out: Path, counts: dict[str, int] = COUNTS) -> list[dict]:
    """Write the subset of `source` into `out` (which must not hold another subset's files)."""
    rows = list_source(source)
    found = {kind: sum(r["kind"] == kind for r in rows) for kind in counts}
    print(f"source: {len(rows)} images; " + ", ".join(f"{k} {n}" for k, n in found.items()))
    stale = [p for p in out.glob("*/*/*.png")] if out.exists() else []
    if stale:
        raise SystemExit(f"{out} already holds {len(stale)} PNGs: delete it first")
    out.mkdir(parents=True, exist_ok=True)
    lines = [write_pair(row, out) for row in choose(rows, counts)]
    write_metadata(out, lines)
    for split in ("train", "val"):
        kinds = {k: sum(1 for r in lines if r["split"] == split and r["kind"] == k) for k in counts}
        print(f"{split}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help="the binary nuclei set (train/ and val/), default ../shared/data/nuclei",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default data_samples/nuclei")
    args = parser.parse_args(argv)
    make(args.source, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
