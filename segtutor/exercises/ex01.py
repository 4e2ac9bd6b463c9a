"""Exercises of 01_data.ipynb: `mask_to_tensor`, `pair_by_stem`, `class_pixel_counts`,
`resize_mask` (`ex.q1` to `ex.q4`), `diagnose` (a decision, `ex.q5`) and the questionnaire
(`ex.quiz`).

Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segtutor.exercises.compare import compare_values
from segtutor.exercises.core import Case, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.formats import IMAGE_EXTENSIONS, VOC_PALETTE
from segtutor.settings import IGNORE_INDEX

__all__ = ["q1", "q2", "q3", "q4", "q5", "quiz", "progress"]


def _pil_mask(labels: np.ndarray, palette: bool = False) -> Image.Image:
    """A PIL mask holding `labels` (uint8 `(H, W)`): greyscale `L`, or palette `P` like VOC."""
    height, width = labels.shape
    image = Image.frombytes(
        "P" if palette else "L", (width, height), labels.astype(np.uint8).tobytes()
    )
    if palette:  # the stored values are palette indices; the palette gives their colours
        flat = [v for color in VOC_PALETTE for v in color]
        image.putpalette(flat + [224, 224, 192] * (256 - len(VOC_PALETTE)))
    return image


def _labels(generator: torch.Generator, shape: tuple[int, int], values: list[int]) -> np.ndarray:
    index = torch.randint(0, len(values), shape, generator=generator)
    return np.asarray(values, dtype=np.uint8)[index.numpy()]


class MaskToTensor(Question):
    title = "Turn a PIL mask into an int64 tensor of class indices (H, W)"
    hints = (
        "`transforms.ToTensor()` is for images: it divides by 255 and adds a channel axis. "
        "A mask needs neither.",
        "`np.array(pil_mask)` gives the stored values as a `(H, W)` array: class indices for "
        "greyscale (`L`) and palette (`P`) masks alike.",
        "`torch.from_numpy(np.array(pil_mask)).long()`: int64, as `CrossEntropyLoss` wants.",
    )
    solution_code = """\
def mask_to_tensor(pil_mask):
    return torch.from_numpy(np.array(pil_mask)).long()  # (H, W) int64"""

    def reference(self, pil_mask):
        return torch.from_numpy(np.array(pil_mask)).long()

    def cases(self):
        g = self.generator()
        yield Case(
            _pil_mask(_labels(g, (5, 7), [0, 1, 2, 3, 255])),
            label="a 5x7 greyscale (L) mask with classes 0-3 and 255 borders",
        )
        yield Case(
            _pil_mask(_labels(g, (6, 4), [0, 1, 5, 15, 255]), palette=True),
            label="a 6x4 palette (P) mask in Pascal VOC colours, classes 0, 1, 5, 15 and 255",
        )
        yield Case(
            _pil_mask(_labels(g, (32, 48), list(range(21)))),
            label="a 32x48 greyscale mask with 21 classes",
        )

    def diagnose(self, expected, got):
        if not isinstance(got, torch.Tensor | np.ndarray):
            return None
        got = torch.as_tensor(got)
        squeezed = got.squeeze(0) if got.dim() == 3 and got.shape[0] == 1 else got
        if squeezed.shape != expected.shape:
            return None
        extra = ""
        if got.dim() == 3:
            extra = (
                "There is a channel axis: masks are `(H, W)`, so `squeeze(0)` it (or use "
                "`np.array`, which has none). "
            )
        scaled = expected.double() / 255
        if squeezed.is_floating_point() and torch.allclose(squeezed.double(), scaled, atol=1e-6):
            return (
                f"{extra}The values are the labels divided by 255: `ToTensor` scales images "
                "to [0, 1]. A mask must keep its class indices."
            )
        squeezed = squeezed.long()
        if not got.is_floating_point() and torch.equal(squeezed, scaled.long()):
            return (
                "Every label became 0 (and 255 became 1): that is `ToTensor`'s "
                "division by 255 followed by `.long()`, which truncates."
            )
        pil_mask = self.case.args[0]
        if pil_mask.mode == "P":
            if torch.equal(squeezed, torch.from_numpy(np.array(pil_mask.convert("L"))).long()):
                return (
                    "This is a palette mask: `.convert('L')` turned its colours into "
                    "brightness values. `np.array(pil_mask)` gives the palette indices, "
                    "which are the classes."
                )
            red = np.array(pil_mask.convert("RGB"))[..., 0].astype(np.int64)
            if torch.equal(squeezed, torch.from_numpy(red)):
                return "These are the red values of the palette colours, not the indices."
        if torch.equal(squeezed, expected):
            return extra.strip() or (
                "The values are right: convert with `.long()`; "
                "`CrossEntropyLoss` needs int64 class indices."
            )
        return extra.strip()


def _stem_map(names: list[str]) -> dict[str, str]:
    """stem -> name, for the names that are samples: not hidden, with an image extension."""
    out = {}
    for name in names:
        path = PurePosixPath(name)
        if name.startswith(".") or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        out[path.stem] = name
    return out


class PairByStem(Question):
    title = "Pair image and mask file names by stem; list the stems left unpaired"
    hints = (
        "The stem is the name without its last extension: `Path('a.b.png').stem == 'a.b'`. "
        "Build a dict `stem -> name` for each folder.",
        "Skip what is not a sample: names starting with '.' (`.DS_Store`, `._a.png`) and "
        "files whose extension (in any case, `.PNG` too) is not an image's, such as "
        "`Thumbs.db` or `notes.txt`.",
        "Pairs: the stems in both dicts (`images.keys() & masks.keys()`); unpaired: the stems "
        "in only one (`images.keys() ^ masks.keys()`), sorted.",
    )
    solution_code = """\
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')

def pair_by_stem(image_names, mask_names):
    def by_stem(names):
        return {Path(n).stem: n for n in names
                if not n.startswith('.') and Path(n).suffix.lower() in IMAGE_EXTENSIONS}
    images, masks = by_stem(image_names), by_stem(mask_names)
    pairs = [(images[s], masks[s]) for s in sorted(images.keys() & masks.keys())]
    unpaired = sorted(images.keys() ^ masks.keys())
    return pairs, unpaired"""

    def reference(self, image_names, mask_names):
        images, masks = _stem_map(image_names), _stem_map(mask_names)
        pairs = [(images[s], masks[s]) for s in sorted(images.keys() & masks.keys())]
        return pairs, sorted(images.keys() ^ masks.keys())

    def cases(self):
        yield Case(
            ["s3.jpg", "s0.jpg", "s1.jpg", "s2.jpg", "s4.jpg"],
            ["s0.png", "s1.png", "s4.png", "s3.png", "s7.png"],
            label="JPEG images, PNG masks, in no order; s2 has no mask and s7 no image",
        )
        yield Case(
            [".DS_Store", "a.png", "b.png", "c.png", "._b.png", "Thumbs.db"],
            ["a.png", ".DS_Store", "b.png", "c.png", "notes.txt"],
            label="hidden and non-image files next to three complete pairs",
        )
        yield Case(
            ["img.v2.PNG", "img.v1.png", "x.TIF", "y.jpeg"],
            ["img.v1.png", "img.v2.png", "x.png", "y.bmp", "z.png"],
            label="stems with dots, extensions in capitals, a mask without image",
        )
        yield Case(["a.png", "b.png"], [], label="an empty masks folder")

    def compare(self, expected, got, name):
        if not isinstance(got, tuple | list) or len(got) != 2:
            return (
                f"`{name}` should be two things, `(pairs, unpaired)`, but it is "
                f"{type(got).__name__} {str(got)[:60]}."
            )
        pairs, unpaired = got
        if not isinstance(pairs, tuple | list) or not isinstance(unpaired, tuple | list | set):
            return (
                "`pairs` should be a list of (image, mask) tuples and `unpaired` a list of stems."
            )
        try:
            pairs = [tuple(p) for p in pairs]
        except TypeError:
            return "Each pair should be a tuple `(image_name, mask_name)`."
        if any(len(p) != 2 for p in pairs):
            return "Each pair should hold two names, `(image_name, mask_name)`."
        everything = [n for p in pairs for n in p] + [str(s) for s in unpaired]
        for item in everything:
            if not isinstance(item, str):
                return f"Names and stems should be strings, but found {item!r}."
            if item.startswith("."):
                return f"`{item}` is a hidden file (it starts with '.'), not a sample: skip it."
            if item in ("Thumbs.db", "notes.txt", "Thumbs", "notes"):
                return f"`{item}` is not an image: keep only names with an image extension."
        for image, mask in pairs:
            if PurePosixPath(image).stem != PurePosixPath(mask).stem:
                if image.split(".")[0] == mask.split(".")[0]:
                    return (
                        f"The pair ({image!r}, {mask!r}) joins two different stems. The stem is "
                        "everything before the *last* dot (`Path(name).stem`), not "
                        "`name.split('.')[0]`."
                    )
                return (
                    f"The pair ({image!r}, {mask!r}) joins two different stems: pairing by "
                    "position shifts every pair after a missing file. Pair by stem."
                )
        want_pairs, want_unpaired = expected
        missing = sorted(set(want_pairs) - set(pairs))
        if missing:
            image, mask = missing[0]
            why = f"The pair ({image!r}, {mask!r}) is missing from `pairs`."
            if PurePosixPath(image).suffix != PurePosixPath(mask).suffix:
                why += " Its files have different extensions: compare stems, not whole names."
            elif PurePosixPath(image).suffix.lower() != PurePosixPath(image).suffix:
                why += " `.PNG` is an image extension too: compare extensions in lower case."
            elif "." in PurePosixPath(image).stem:
                why += (
                    " Its stem has a dot: the stem is everything before the *last* dot "
                    "(`Path(name).stem`), not `name.split('.')[0]`."
                )
            return why
        extra = sorted(set(pairs) - set(want_pairs))
        if extra:
            return f"`pairs` holds {extra[0]}, which is not a pair of this case."
        if len(pairs) != len(want_pairs):
            return f"`pairs` has {len(pairs)} pairs; expected {len(want_pairs)} (no duplicates)."
        unpaired = [str(s) for s in unpaired]
        if sorted(set(unpaired)) != want_unpaired:
            names = [s for s in unpaired if "." in s and PurePosixPath(s).stem in want_unpaired]
            if names:
                return (
                    f"`unpaired` should hold stems, e.g. {PurePosixPath(names[0]).stem!r}, "
                    f"not file names like {names[0]!r}."
                )
            return (
                f"`unpaired` is {sorted(unpaired)}; expected the stems {want_unpaired} "
                "(images without a mask and masks without an image)."
            )
        return None


class ClassPixelCounts(Question):
    title = "Count the pixels of each class in a batch of masks, skipping ignored pixels"
    hints = (
        "Keep the pixels that are not ignored: `masks[masks != ignore_index]` (a 1-D tensor).",
        "`torch.bincount(values, minlength=num_classes)` counts each value; `minlength` keeps a "
        "0 for classes that have no pixels, so the result always has `num_classes` entries.",
    )
    solution_code = """\
def class_pixel_counts(masks, num_classes, ignore_index=255):
    kept = masks[masks != ignore_index]  # (P,) the labelled pixels
    return torch.bincount(kept, minlength=num_classes)  # (num_classes,) int64"""

    def reference(self, masks, num_classes, ignore_index=IGNORE_INDEX):
        return torch.bincount(masks[masks != ignore_index], minlength=num_classes)

    def cases(self):
        g = self.generator()
        masks = torch.randint(0, 3, (4, 6, 5), generator=g)
        masks[:, 0, :] = IGNORE_INDEX  # a border row
        yield Case(masks, 4, label="4 masks 6x5 with classes 0-2, a 255 border row, num_classes=4")
        yield Case(torch.randint(0, 5, (2, 8, 8), generator=g), 5,
                   label="2 masks 8x8 with classes 0-4 and nothing ignored")  # fmt: skip
        sparse = torch.full((3, 10, 10), IGNORE_INDEX, dtype=torch.int64)
        sparse[0, 2:4, 2:4] = 1
        sparse[2, 5, :] = 0
        yield Case(sparse, 3, ignore_index=IGNORE_INDEX,
                   label="3 masks 10x10, almost all ignored; class 2 absent")  # fmt: skip

    def diagnose(self, expected, got):
        if not isinstance(got, torch.Tensor | np.ndarray):
            return None
        got = torch.as_tensor(got)
        masks, num_classes = self.case.args
        ignored = int((masks == IGNORE_INDEX).sum())
        if got.dim() == 1 and got.numel() == 256:
            return "256 entries: 255 was counted as a class. Drop the ignored pixels first."
        if got.dim() == 1 and got.numel() < num_classes:
            return (
                f"A class with no pixels still needs its 0: there are {num_classes} "
                "classes (`minlength=num_classes`)."
            )
        if got.shape != expected.shape:
            return None
        if got.is_floating_point() and torch.allclose(got.double(), expected.double()):
            return (
                "The counts are right but should be int64 (`torch.bincount` "
                "gives that; `histc` gives floats)."
            )
        one = torch.ones((), dtype=torch.float64)
        if got.is_floating_point() and torch.allclose(got.double().sum(), one):
            return "These look like shares; the question asks for pixel counts."
        if ignored and int(got.sum()) == int(expected.sum()) + ignored:
            return (
                f"The counts add up to {int(got.sum())}, which includes the "
                f"{ignored} ignored pixels: leave out pixels equal to `ignore_index`."
            )
        return None


def _nearest_variants(mask: torch.Tensor, size: tuple[int, int]) -> list[torch.Tensor]:
    """The mask resized by each common nearest-neighbour convention (torch, exact, PIL)."""
    x = mask[None, None].float()
    out = [F.interpolate(x, size=size, mode=m)[0, 0].long() for m in ("nearest", "nearest-exact")]
    pil = Image.fromarray(mask.numpy().astype(np.uint8)).resize(size[::-1], Image.NEAREST)
    out.append(torch.from_numpy(np.array(pil)).long())
    return out


class ResizeMask(Question):
    title = "Resize a mask to (height, width) with nearest neighbour"
    hints = (
        "`F.interpolate` wants a float `(N, C, H, W)` tensor: `mask[None, None].float()`.",
        "`mode='nearest'` copies one source label per pixel; bilinear would average labels into "
        "values that are no class. Take `[0, 0]` and `.long()` afterwards.",
    )
    solution_code = """\
def resize_mask(mask, size):
    x = mask[None, None].float()  # (1, 1, H, W): interpolate wants N and C axes
    return F.interpolate(x, size=size, mode='nearest')[0, 0].long()  # (h, w) int64"""

    def reference(self, mask, size):
        return _nearest_variants(mask, tuple(size))[0]

    def cases(self):
        g = self.generator()
        yield Case(
            torch.tensor([0, 1, 2, 255])[torch.randint(0, 4, (7, 9), generator=g)],
            (14, 5),
            label="a 7x9 mask with classes 0-2 and 255, to (14, 5)",
        )
        blocks = torch.zeros(16, 12, dtype=torch.int64)
        blocks[4:12, 2:6], blocks[8:, 6:] = 3, 1
        yield Case(blocks, (8, 6), label="a 16x12 mask of rectangles, to (8, 6)")
        yield Case(torch.randint(0, 6, (5, 5), generator=g), (12, 11),
                   label="a 5x5 mask with classes 0-5, to (12, 11)")  # fmt: skip

    def compare(self, expected, got, name):
        mask, size = self.case.args
        if isinstance(got, torch.Tensor | np.ndarray) and got.shape == expected.shape:
            got_t = torch.as_tensor(got)
            if got_t.dtype == torch.int64 and any(
                torch.equal(got_t, v) for v in _nearest_variants(mask, tuple(size))
            ):
                return None
        return compare_values(expected, got, name)

    def diagnose(self, expected, got):
        if not isinstance(got, torch.Tensor | np.ndarray):
            return None
        got, (mask, size) = torch.as_tensor(got), self.case.args
        if tuple(got.shape) == tuple(size)[::-1] and size[0] != size[1]:
            return (
                "Height and width are swapped: `size` is `(height, width)` (PIL's "
                "`resize` takes `(width, height)`)."
            )
        if got.dim() == 4 and tuple(got.shape[-2:]) == tuple(size):
            return "Remove the batch and channel axes again: `[0, 0]`."
        if got.shape != expected.shape:
            return None
        new = sorted(set(torch.unique(got.double()).tolist()) - set(mask.unique().tolist()))
        if new:
            shown = ", ".join(f"{v:g}" for v in new[:5]) + (", ..." if len(new) > 5 else "")
            return (
                f"Values that are no label of the mask appear ({shown}): the interpolation "
                "averaged labels. Use `mode='nearest'`."
            )
        if got.dtype != torch.int64:
            return "Class indices are int64: `.long()` the result."
        return None


# ---- q5 (a decision) and the questionnaire: answers as a dict --------------------------------


class Diagnose(ChoiceQuestion):
    title = "For each symptom, the defect that causes it"
    hints = (
        "Each symptom is printed somewhere in this notebook: find the cell whose output looks "
        "like it. The causes: 'totensor', 'bilinear', 'position', 'palette', 'binary_255', "
        "'separate'.",
        "A value that is no class comes from averaging or from brightness; a class that vanished "
        "from scaling; a mask that belongs elsewhere from pairing or from random draws.",
    )
    solution_code = """\
def diagnose():
    return {"a": "totensor", "b": "bilinear", "c": "palette", "d": "binary_255",
            "e": "position", "f": "separate"}"""
    answers = {"a": "totensor", "b": "bilinear", "c": "palette", "d": "binary_255",
               "e": "position", "f": "separate"}  # fmt: skip
    reasons = {
        "a": "`ToTensor` divides by 255: labels 1-3 truncate to 0 and 255 becomes 1 (defect 1).",
        "b": "Bilinear resizing averages class numbers: next to a 255 border it makes 4..254.",
        "c": "`.convert('L')` turns each palette colour into its brightness (disc 38, bar 75).",
        "d": "255 is 'ignore': a 0/255 mask hides every foreground pixel unless binary_255=True.",
        "e": "Sorted listings paired by position shift every pair after a missing file.",
        "f": "Two random pipelines draw two different flips, crops and angles (defect 4).",
    }


class DataQuiz(Questionnaire):
    hints = (
        "Every answer is printed by a cell of this notebook: sections 3 to 7 and optional "
        "section A.",
    )
    answers = {1: 0.0039, 2: 1, 3: 100, 4: 121, 5: "nearest", 6: 5, 7: 38, 8: "binary_255",
               9: 2, 10: 74, 11: 86}  # fmt: skip
    tolerances = {1: 0.0001, 3: 0.5, 10: 1, 11: 0.5}
    reasons = {
        1: "1 / 255 = 0.0039 (section 3, after ToTensor).",
        2: "255 / 255 = 1.0, and `.long()` makes it class 1 (disc).",
        3: "Every one of the 444,088 object pixels became background.",
        4: "Bilinear 128 -> 96 gave 121 distinct values (section 3).",
        5: "Nearest neighbour copies an existing label; it never averages.",
        6: "Positions 3 to 7 are shifted (section 4).",
        7: "The brightness of VOC's dark red (128, 0, 0) is 38 (optional section A).",
        8: "`SegmentationDataset(..., binary_255=True)`, `--binary-255` on the command line.",
        9: "0 means usable, 2 means not (section 5).",
        10: "Separate pipelines: 74% of the object pixels disagree (section 7).",
        11: "86.1% of the labelled training pixels are background (section 6).",
    }


q1, q2, q3, q4 = MaskToTensor(), PairByStem(), ClassPixelCounts(), ResizeMask()
q5, quiz = Diagnose(), DataQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
