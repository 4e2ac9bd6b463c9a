"""From a folder of images and masks on disk to pairs of tensors.

Introduced in `01_data.ipynb`. The folder format (see DEVELOPERS.md)::

    DIR/images/<stem>.png|jpg|jpeg|bmp|tif|tiff    DIR/masks/<stem>.png    DIR/dataset.json (optional)

or the same under `DIR/train/` and `DIR/val/`. Images and masks are paired by file stem, never by
position: one missing file or a stray `.DS_Store` cannot shift every pair after it.

How a file pair becomes tensors, in this file: `SegmentationDataset.read_sample` calls the two
decoders of `segtutor.formats` (`decode_image`: RGB uint8 `(H, W, 3)`; `decode_mask`: class
indices `(H, W)`) and wraps them as `tv_tensors`; `__getitem__` applies the transform. Everything
that can be checked is checked once, when the dataset is built (`segtutor.checks.scan`), and
every problem is reported at once in one `DataError`, so that training never stops in the middle
of an epoch on a bad file. `load_splits` gives train and validation sets, `make_loader` the
`DataLoader`s.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision import tv_tensors
from torchvision.transforms.v2.functional import resize

from segtutor.checks import DatasetReport, scan, scan_folders, scan_layout, split_folders
from segtutor.distributed import is_distributed
from segtutor.errors import DataError, Problem, listed
from segtutor.formats import Color, decode_image, decode_mask
from segtutor.layouts import Layout, find_layout
from segtutor.transforms import scaled_size

__all__ = [
    "SegmentationDataset",
    "load_layout_split",
    "load_splits",
    "make_loader",
    "one_thread",
]

Transform = Callable[[tv_tensors.Image, tv_tensors.Mask], Any]


class SegmentationDataset(torch.utils.data.Dataset):
    """Pairs of `image` and `mask` from `root/images` + `root/masks`, checked when built.

    Introduced in `01_data.ipynb`.

    Args:
        root: folder holding `images/` and `masks/` (and optionally `dataset.json`).
        num_classes: number of classes, background included; None infers it (see `scan`).
        transform: callable `(image, mask) -> (image, mask)`, e.g. `segtutor.transforms`'s. It
            receives a uint8 `tv_tensors.Image (3, H, W)` and an int64 `tv_tensors.Mask (H, W)`.
        cache: keep decoded uint8 samples in memory, so that later epochs decode no PNG. The cache
            lives in each process: DataLoader workers fill their own copies, which die with them
            unless `persistent_workers=True`. Masks decoded for validation are kept at once.
        binary_255: read 255 as class 1 (0/255 binary masks) instead of "ignore".
        palette: one `(r, g, b)` per class; maps colour masks to indices (e.g. `VOC_PALETTE`).
        class_names: one name per class.

    Raises:
        DataError: listing every problem found (see `scan`), before any training starts.

    Shape:
        `ds[i]` -> `transform(image, mask)`, or without a transform `(image, mask)` with image
        float32 `(3, H, W)` in 0..1 and mask int64 `(H, W)` of class indices, 255 = ignore.

    Example:
        >>> ds = SegmentationDataset("data_samples/scenes/train", cache=True)
        >>> image, mask = ds[0]
    """

    def __init__(
        self,
        root: str | Path,
        *,
        num_classes: int | None = None,
        transform: Transform | None = None,
        cache: bool = False,
        binary_255: bool = False,
        palette: Sequence[Color] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        report = scan(
            root,
            num_classes,
            binary_255,
            palette=palette,
            class_names=class_names,
            keep_masks=cache,
        )
        if report.problems:
            raise DataError(report.problems)
        self._init_from(report, transform, cache)

    @classmethod
    def from_report(
        cls, report: DatasetReport, *, transform: Transform | None = None, cache: bool = False
    ) -> SegmentationDataset:
        """Build a dataset from a `scan` report without scanning again (`load_splits` does).

        Introduced in `01_data.ipynb`.

        Raises:
            DataError: the report has problems.
        """
        if report.problems:
            raise DataError(report.problems)
        dataset = cls.__new__(cls)
        dataset._init_from(report, transform, cache)
        return dataset

    def _init_from(self, report: DatasetReport, transform: Transform | None, cache: bool) -> None:
        self.root = report.root
        self.report = report
        self.stems = list(report.stems)
        self.image_paths = list(report.image_paths)
        self.mask_paths = list(report.mask_paths)
        self.num_classes: int = report.num_classes or 0
        self.class_names = list(report.class_names)
        self.palette = report.palette  # None: viewers use their default (segtutor.viz)
        self.binary_255 = report.binary_255
        self.layout = report.layout  # a famous dataset as it ships (segtutor.layouts), or None
        self.lookup = report.lookup  # its table: stored mask value -> class index or 255
        self.transform = transform
        self.cache = cache
        self.scale, self.scale_masks = 1.0, True  # see set_scale
        self._native = dict(zip(report.stems, report.image_sizes, strict=True))  # stem -> (w, h)
        self._images: dict[str, torch.Tensor] = {}  # stem -> uint8 (3, H, W)
        self._masks: dict[str, torch.Tensor] = {}  # stem -> uint8 (H, W); < 256 once validated
        if cache:
            self._masks = {
                s: torch.from_numpy(m.astype(np.uint8, copy=False)) for s, m in report.masks.items()
            }
        report.masks = {}  # the report should not hold a second reference to every mask

    def subset(self, stems: Iterable[str]) -> SegmentationDataset:
        """The samples with the given stems, sharing this dataset's checks and cache.

        Introduced in `01_data.ipynb`. Raises `KeyError` for a stem this dataset lacks.
        """
        index = {s: i for i, s in enumerate(self.stems)}
        missing = [s for s in stems if s not in index]
        if missing:
            raise KeyError(f"stems not in {self.root}: {listed(missing)}")
        keep = sorted(index[s] for s in set(stems))
        part = object.__new__(type(self))
        part.__dict__.update(self.__dict__)  # shares the cache dicts: decode once for both
        part.stems = [self.stems[i] for i in keep]
        part.image_paths = [self.image_paths[i] for i in keep]
        part.mask_paths = [self.mask_paths[i] for i in keep]
        return part

    def set_scale(self, scale: float, *, masks: bool = True) -> None:
        """Read every image resized by `scale` (and its mask too, unless `masks` is False).

        Introduced in `04_training.ipynb`. The resizing happens once per file, when it is first
        read, and the cache holds the resized pair: a large photo is decoded and shrunk once, not
        at every epoch. Validation keeps the masks at their own size (`masks=False`), so that the
        metric is taken on the labels as they were drawn. Gives this dataset caches of its own.
        """
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        native = self.scale == 1 or not self.scale_masks  # the cached masks: at their own size?
        self.scale, self.scale_masks = float(scale), masks
        own = set(self.stems)
        self._images = {}
        # resized masks are not resized again (the factors would compound): read anew instead
        cached = self._masks.items() if native else ()
        self._masks = {s: self._rescale_mask(s, m) for s, m in cached if s in own}

    def _rescale_mask(self, stem: str, mask: torch.Tensor) -> torch.Tensor:
        if self.scale == 1 or not self.scale_masks:
            return mask
        size = scaled_size(*mask.shape, self.scale)
        return _resize(tv_tensors.Mask(mask), size).as_subclass(torch.Tensor)

    @property
    def pixel_counts(self) -> torch.Tensor:
        """Pixels per class over these samples, int64 `(num_classes,)` (for class weights).

        Introduced in `01_data.ipynb`.
        """
        return torch.from_numpy(self.report.pixel_counts(self.stems))

    def __len__(self) -> int:
        return len(self.stems)

    def read_sample(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        """The raw pair: image uint8 `(3, H, W)`, mask int64 `(H, W)`; no transform.

        Introduced in `01_data.ipynb`. The image comes from `formats.decode_image`, the mask
        from `formats.decode_mask` (or the cache, which holds what the checks decoded), both
        resized by the dataset's scale (`set_scale`; 1 unless set).

        Raises:
            DataError: a file changed since the dataset was checked and cannot be decoded.
        """
        stem = self.stems[index]
        image = self._images.get(stem)
        if image is None:
            width, height = self._native[stem]
            size = scaled_size(height, width, self.scale)
            shrunk = self.scale < 1  # a JPEG may be decoded at 1/2, 1/4 or 1/8 (decode_image)
            image = self._load(
                self.image_paths[index], decode_image, shrink_to=size if shrunk else None
            )
            # (H, W, 3) -> (3, H, W) as a view: copying into channel-first order would cost as
            # much as the decode, and every torch op accepts the strides as they are
            image = torch.from_numpy(image).permute(2, 0, 1)
            self._check_size(index, image.shape[1:], self.image_paths[index], shrunk=shrunk)
            if tuple(image.shape[1:]) != size:
                image = _resize(image, size)
            if self.cache:
                self._images[stem] = image
        elif self.cache:
            image = image.clone()  # a transform that writes in place must not change the cache
        return tv_tensors.Image(image), tv_tensors.Mask(self.read_mask(index).long())

    def read_mask(self, index: int) -> torch.Tensor:
        """The mask alone, int (H, W) at the dataset's scale, from the cache or decoded.

        Introduced in `04_training.ipynb` (the working scale is measured on masks alone).
        """
        stem = self.stems[index]
        mask = self._masks.get(stem)
        if mask is None:
            mask = torch.from_numpy(self._load(self.mask_paths[index], self._decode_mask))
            self._check_size(index, mask.shape, self.mask_paths[index])
            mask = self._rescale_mask(stem, mask)
            if self.cache:
                self._masks[stem] = mask
        return mask

    def _check_size(
        self, index: int, shape: Sequence[int], path: Path, *, shrunk: bool = False
    ) -> None:
        """A decoded image or mask must have the size the checks read from the image's header
        (or, `shrunk`, that size divided by 2, 4 or 8 and rounded up: a JPEG decoded small)."""
        width, height = self._native[self.stems[index]]
        factors = (1, 2, 4, 8) if shrunk else (1,)
        if tuple(shape) not in {(-(-height // k), -(-width // k)) for k in factors}:
            raise DataError(
                Problem(
                    path,
                    f"is {tuple(shape)} but the image was ({height}, {width}) when the dataset "
                    "was checked (changed since?)",
                    "run `python -m segtutor check-data` on the folder again",
                )
            )

    def _decode_mask(self, path: Path) -> np.ndarray:
        return decode_mask(path, self.palette, self.binary_255, lookup=self.lookup)

    @staticmethod
    def _load(path: Path, decode: Callable[..., np.ndarray], **options: Any) -> np.ndarray:
        try:
            return decode(path, **options)
        except Exception as error:  # the file was fine when checked: say which one broke
            raise DataError(
                Problem(
                    path,
                    f"could not be decoded, though it was fine when the "
                    f"dataset was built ({error})",
                    "restore the file, then run "
                    "`python -m segtutor check-data` on the folder again",
                )
            ) from error

    def __getitem__(self, index: int) -> Any:
        with one_thread():
            image, mask = self.read_sample(index)
            if self.transform is not None:
                return self.transform(image, mask)
            # in place: one float copy of the image, not two
            image = image.as_subclass(torch.Tensor).float().div_(255)
            return image, mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, {len(self)} samples, "
            f"num_classes={self.num_classes}, cache={self.cache})"
        )


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread inside the block, then restore the thread count.

    Introduced in `04_training.ipynb`. One sample's decoding and augmentation are many small
    operations: splitting each over every core costs more in waking threads than it saves, and
    on a machine whose cores are busy it makes every small operation wait for a free one
    (docs/benchmarks.md has the measurement). DataLoader worker processes already run on one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 image `(3, H, W)` smoothly (antialiased), a `tv_tensors.Mask` by nearest neighbour."""
    return resize(pixels, list(size), antialias=True)


_DATASET_KWARGS = {"num_classes", "transform", "cache", "binary_255", "palette", "class_names"}


def load_splits(
    root: str | Path,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_transform: Transform | None = None,
    val_transform: Transform | None = None,
    layout: str | None = None,
    **dataset_kwargs: Any,
) -> tuple[SegmentationDataset, SegmentationDataset]:
    """Train and validation datasets: `root/train` + `root/val`, else one pool split by stem.

    Introduced in `01_data.ipynb`.

    A pool is split by hashing each stem with the seed: a stem goes to validation when its hash
    falls below `val_fraction`. The split is the same on every run and machine, and adding files
    never moves an existing stem to the other side. (If that leaves one side empty, the stem with
    the lowest hash moves, so a tiny pool still gets one validation sample.)

    Args:
        root: dataset folder, with `train/` and `val/` or with `images/` and `masks/`.
        val_fraction: share of a pool that goes to validation.
        seed: changes which stems are drawn.
        train_transform: transform of the training set (default: `transform` if given).
        val_transform: transform of the validation set (default: `transform` if given).
        layout: a famous dataset's layout (`segtutor.layouts.LAYOUTS`: `"voc"`, `"cityscapes"`,
            ...), or `"folder"` for `images/` + `masks/`; None recognises it. A layout gives its
            own train and validation splits, class names, palette and mask values (`palette`
            and `binary_255` are then not used).
        **dataset_kwargs: `num_classes`, `transform`, `cache`, `binary_255`, `palette`,
            `class_names`, as for `SegmentationDataset`.

    Returns:
        `(train_ds, val_ds)`, checked together (one `DataError` lists the problems of both) and
        sharing one `num_classes`.
    """
    root = Path(root)
    unknown = set(dataset_kwargs) - _DATASET_KWARGS
    if unknown:  # a typo such as `num_class=3` must not be silently ignored
        raise TypeError(f"load_splits() got unexpected keyword arguments: {sorted(unknown)}")
    transform = dataset_kwargs.get("transform")
    cache = bool(dataset_kwargs.get("cache", False))
    found = find_layout(root, layout)
    if found is not None:
        train_t = train_transform if train_transform is not None else transform
        val_t = val_transform if val_transform is not None else transform
        options = {k: dataset_kwargs.get(k) for k in ("num_classes", "class_names")}
        train_ds = load_layout_split(*found, "train", transform=train_t, cache=cache, **options)
        val_ds = load_layout_split(*found, "val", transform=val_t, cache=cache, **options)
        _check_something_to_learn(train_ds)
        return train_ds, val_ds
    folders = {p.name: p for p in split_folders(root) if p.name in ("train", "val")}
    if "val" not in folders:  # one pool: root itself, or root/train alone
        folders = {"all": folders.get("train", root)}
    reports = scan_folders(
        folders,
        dataset_kwargs.get("num_classes"),
        bool(dataset_kwargs.get("binary_255", False)),
        palette=dataset_kwargs.get("palette"),
        class_names=dataset_kwargs.get("class_names"),
        keep_masks=cache,
    )
    problems = [p for r in reports.values() for p in r.problems]
    if problems:
        raise DataError(problems)
    train_t = train_transform if train_transform is not None else transform
    val_t = val_transform if val_transform is not None else transform
    if "val" in reports:
        train_ds = SegmentationDataset.from_report(reports["train"], transform=train_t, cache=cache)
        val_ds = SegmentationDataset.from_report(reports["val"], transform=val_t, cache=cache)
    else:
        pool = SegmentationDataset.from_report(reports["all"], cache=cache)
        if val_fraction > 0 and len(pool) < 2:
            raise DataError(Problem(pool.root, f"has {len(pool)} pair: too few to split into "
                                    "training and validation", "add pairs, or put them in "
                                    "train/ and val/ folders (each with images/ and masks/)"))  # fmt: skip
        train_stems, val_stems = _split_stems(pool.stems, val_fraction, seed)
        train_ds, val_ds = pool.subset(train_stems), pool.subset(val_stems)
        train_ds.transform, val_ds.transform = train_t, val_t
    _check_something_to_learn(train_ds)
    return train_ds, val_ds


def load_layout_split(
    layout: Layout,
    root: str | Path,
    split: str,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    transform: Transform | None = None,
    cache: bool = False,
) -> SegmentationDataset:
    """One split of a famous dataset as it ships (`segtutor.layouts`), checked when built.

    Introduced in `01_data.ipynb`.

    Args:
        layout: the layout, and root: its root, as `layouts.find_layout(path)` returns them.
        split: `"train"`, `"val"` or the dataset's own name (`"test"`, `"trainval"`, ...).
        num_classes, class_names: override the layout's (rarely useful).
        transform, cache: as for `SegmentationDataset`.

    Raises:
        DataError: every problem of the split (a listed file that is missing, a mask value the
            layout never stores, ...), each naming its file.
    """
    reports = scan_layout(
        root, layout, [split], num_classes=num_classes, class_names=class_names, keep_masks=cache
    )
    return SegmentationDataset.from_report(reports[split], transform=transform, cache=cache)


def _check_something_to_learn(train_ds: SegmentationDataset) -> None:
    """Raise when every training mask is 255 (ignore) everywhere: no pixel to learn from."""
    if len(train_ds) and not train_ds.pixel_counts.any():
        raise DataError(Problem(train_ds.root / "masks", "the training masks "
                                f"({listed(train_ds.stems)}) hold only 255 (ignore): there is "
                                "no labelled pixel to learn from", "label those masks, or "
                                "change the split (seed=, command line: --seed)"))  # fmt: skip


def _split_stems(
    stems: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Deterministic split: each stem's side depends only on (seed, stem)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")

    def draw(stem: str) -> float:  # uniform in [0, 1), the same on every machine (unlike hash())
        return int(hashlib.sha1(f"{seed}:{stem}".encode()).hexdigest()[:15], 16) / 16**15

    val = [s for s in stems if draw(s) < val_fraction]
    if val_fraction > 0 and len(stems) >= 2 and len(val) in (0, len(stems)):
        by_draw = sorted(stems, key=draw)
        val = by_draw[:1] if not val else by_draw[:-1]
    chosen = set(val)
    return [s for s in stems if s not in chosen], [s for s in stems if s in chosen]


# --- loaders ---------------------------------------------------------------------------------


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id; python and numpy must follow, or every
    # worker would draw the same "random" augmentations.
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    **kwargs: Any,
) -> DataLoader:
    """A `DataLoader` whose shuffling and worker randomness repeat for the same `seed`.

    Introduced in `01_data.ipynb`.

    The shuffling order comes from its own `torch.Generator` (`loader.generator`), so it does not
    depend on how many random numbers the model drew; `fit` saves and restores that generator
    when it checkpoints and resumes. Extra keyword arguments go to `DataLoader`.

    Use `batch_size=1` for validation sets whose images have different sizes.

    Under torchrun (see `segtutor.distributed`), `shuffle=True` gives each process its own share
    of every epoch through a `DistributedSampler(seed=seed)`, and `batch_size` is per process: one
    optimizer step sees `world_size * batch_size` images. A loader with `shuffle=False` is not
    split here; `fit` and `evaluate` split validation batches among the processes themselves.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    if shuffle and is_distributed() and "sampler" not in kwargs:
        # One seeded permutation, the same in every process; each takes every world_size-th item.
        # fit calls sampler.set_epoch(epoch), so that each epoch has a new permutation.
        kwargs["sampler"] = DistributedSampler(dataset, shuffle=True, seed=seed)
        shuffle = False  # the sampler shuffles
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=_seed_worker,
        persistent_workers=num_workers > 0,
        **kwargs,
    )
