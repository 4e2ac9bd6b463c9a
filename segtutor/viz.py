"""Pictures of masks, predictions, errors, training curves and confusion matrices.

Introduced in `01_data.ipynb` (`colorize`, `overlay`), then `05_evaluation.ipynb`
(`plot_confusion`) and `06_visualisation.ipynb` (predictions, errors, training curves).
Which images a model gets worst (`worst_k`) is a question for `segtutor.inference`; this module
only draws.

Every plotting function returns a `matplotlib.figure.Figure` built without pyplot: it shows once
in Jupyter when it is the last expression of a cell (or with `display(fig)`), saves with
`fig.savefig(path)` from the command line, and never needs closing. Nothing here changes
rcParams or the backend, and nothing calls `plt.show()`.

Colours: the default palette is Okabe-Ito (readable with every common colour-vision deficiency),
class 0 (background) is black, and ignored pixels (mask value 255) are white everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from segtutor.settings import IGNORE_INDEX
from segtutor.transforms import denormalize

__all__ = [
    "CLASS_ERROR_COLORS",
    "DEFAULT_PALETTE",
    "ERROR_COLORS",
    "IGNORE_COLOR",
    "class_error_overlay",
    "colorize",
    "error_map",
    "legend_handles",
    "make_palette",
    "overlay",
    "plot_confusion",
    "plot_history",
    "plot_prediction_strip",
    "plot_predictions",
    "plot_unet_shapes",
    "to_uint8_image",
]

Color = tuple[int, int, int]

# Okabe & Ito (2008), "Color Universal Design", with black first for the background class.
DEFAULT_PALETTE: list[Color] = [
    (0, 0, 0),  # black: background
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
]
IGNORE_COLOR: Color = (255, 255, 255)  # white: no class in the palette uses it

# error_map's colours: correct pixels stay dark so that the errors stand out.
ERROR_COLORS: dict[str, Color] = {
    "correct": (0, 0, 0),
    "false positive": (213, 94, 0),  # vermillion: predicted an object where there is none
    "false negative": (86, 180, 233),  # sky blue: missed an object
    "wrong class": (240, 228, 66),  # yellow: found the object, gave it the wrong class
    "ignored": IGNORE_COLOR,
}

_DPI = 80  # small figures keep notebooks small


def make_palette(num_classes: int) -> list[Color]:
    """`num_classes` colours: Okabe-Ito first, then matplotlib's tab20 for more than 8 classes.

    Introduced in `01_data.ipynb`.
    """
    from matplotlib import colormaps

    colors = list(DEFAULT_PALETTE)
    tab20 = colormaps["tab20"]
    for i in range(max(0, num_classes - len(colors))):
        r, g, b, _ = tab20(i % 20)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return colors[:num_classes]


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def colorize(mask: Any, palette: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """Colour image of a mask: class c drawn as `palette[c]`, 255 (ignore) drawn white.

    Introduced in `01_data.ipynb`.

    Args:
        mask: class indices `(H, W)`, a tensor or an array.
        palette: one `(r, g, b)` per class; default `make_palette` for the classes present.

    Returns:
        uint8 array `(H, W, 3)`.
    """
    mask = _numpy(mask).astype(np.int64)
    if mask.ndim != 2:
        raise ValueError(f"colorize expects one mask (H, W), got shape {mask.shape}")
    labels = mask[mask != IGNORE_INDEX]
    if labels.size and (labels.min() < 0 or labels.max() > IGNORE_INDEX):
        raise ValueError(
            f"mask values must be class indices 0..254 or 255, got {labels.min()}..{labels.max()}"
        )
    if palette is None:
        palette = make_palette(int(labels.max()) + 1 if labels.size else 1)
    if labels.size and labels.max() >= len(palette):
        raise ValueError(
            f"the mask holds class {labels.max()} but the palette has {len(palette)} colours; "
            f"pass palette=make_palette({labels.max() + 1}) or the dataset's palette"
        )
    lut = np.zeros((256, 3), dtype=np.uint8)  # lookup table: class index -> colour
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    lut[IGNORE_INDEX] = IGNORE_COLOR
    return lut[mask]


def to_uint8_image(image: Any) -> np.ndarray:
    """Any image the course handles -> uint8 `(H, W, 3)` for plotting.

    Introduced in `01_data.ipynb`.

    Accepts uint8 `(3, H, W)` or `(H, W, 3)`, float in [0, 1], or float normalised with the
    ImageNet mean and std (recognised by values outside [0, 1], then denormalised).
    """
    array = _numpy(image)
    if array.ndim != 3:
        raise ValueError(f"expected one image (3, H, W) or (H, W, 3), got shape {array.shape}")
    if array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float32)
    if array.min() < 0 or array.max() > 1:  # normalised: undo (x - mean) / std
        channels_first = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
        array = denormalize(channels_first).permute(1, 2, 0).numpy()  # (H, W, 3) in [0, 1]
    return (np.clip(array, 0, 1) * 255).round().astype(np.uint8)


def overlay(
    image: Any,
    mask: Any,
    palette: Sequence[Sequence[int]] | None = None,
    alpha: float = 0.5,
    background: int | None = 0,
) -> np.ndarray:
    """The image with the mask's colours blended in; uint8 `(H, W, 3)`.

    Introduced in `01_data.ipynb`.

    Pixels of class `background` (default 0) and ignored pixels keep the image's own colours,
    so only the objects are tinted. `alpha` is the weight of the mask's colour.
    """
    rgb = to_uint8_image(image).astype(np.float32)
    colors = colorize(mask, palette).astype(np.float32)
    mask = _numpy(mask)
    tint = mask != IGNORE_INDEX
    if background is not None:
        tint &= mask != background
    out = rgb.copy()
    out[tint] = (1 - alpha) * rgb[tint] + alpha * colors[tint]
    return out.round().astype(np.uint8)


def error_map(
    pred: Any, mask: Any, ignore_index: int = IGNORE_INDEX, background: int = 0
) -> np.ndarray:
    """Where the prediction is wrong, and how; uint8 `(H, W, 3)` coloured by `ERROR_COLORS`.

    Introduced in `06_visualisation.ipynb`.

    With `background` as the negative class (class 0 by default):
      - correct: prediction equals the mask (black);
      - false positive: an object class predicted where the mask says background;
      - false negative: background predicted where the mask has an object;
      - wrong class: an object found but given another object class (multi-class only);
      - ignored: the mask is `ignore_index` (white), whatever the prediction.
    For two classes this is exactly the usual false positive / false negative picture.
    """
    pred, mask = _numpy(pred), _numpy(mask)
    if pred.shape != mask.shape:
        raise ValueError(f"pred {pred.shape} and mask {mask.shape} must have the same shape")
    out = np.empty((*mask.shape, 3), dtype=np.uint8)
    out[:] = ERROR_COLORS["wrong class"]
    out[pred == mask] = ERROR_COLORS["correct"]
    out[(pred != background) & (mask == background)] = ERROR_COLORS["false positive"]
    out[(pred == background) & (mask != background)] = ERROR_COLORS["false negative"]
    out[mask == ignore_index] = ERROR_COLORS["ignored"]
    return out


def legend_handles(
    class_names: Sequence[str],
    palette: Sequence[Sequence[int]] | None = None,
    include_ignore: bool = False,
) -> list[Patch]:
    """Legend patches, one per class (and "ignore" if asked): `ax.legend(handles=...)`.

    Introduced in `01_data.ipynb`.
    """
    palette = palette if palette is not None else make_palette(len(class_names))
    items = list(zip(class_names, palette, strict=False))
    if include_ignore:
        items.append(("ignore", IGNORE_COLOR))
    return [Patch(facecolor=np.asarray(c) / 255, edgecolor="0.5", label=n) for n, c in items]


def plot_predictions(
    images: Any,
    masks: Any,
    preds: Any,
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    max_rows: int = 4,
) -> Figure:
    """A grid with one row per image: image / ground truth / prediction / error map.

    Introduced in `06_visualisation.ipynb`.

    Args:
        images: `(N, 3, H, W)` (normalised float, float in [0, 1], or uint8) or a list of images
            of different sizes.
        masks: `(N, H, W)` class indices, or a list.
        preds: `(N, H, W)` predicted class indices, or a list.
        class_names: names for the legend; default `class_0`, `class_1`, ...
        palette: one colour per class; default `make_palette`.
        max_rows: at most this many images are drawn.
    """
    rows = min(len(images), max_rows)
    if rows == 0:
        raise ValueError("plot_predictions needs at least one image")
    num_classes = (
        len(class_names)
        if class_names is not None
        else 1 + max(int(_valid_max(m)) for m in [*list(masks[:rows]), *list(preds[:rows])])
    )
    class_names = list(class_names or [f"class_{c}" for c in range(num_classes)])
    palette = list(palette) if palette is not None else make_palette(len(class_names))

    fig = Figure(figsize=(8, 2 * rows + 0.6), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, 4, squeeze=False)
    titles = ["image", "ground truth", "prediction", "errors"]
    for i in range(rows):
        panels = [
            to_uint8_image(images[i]),
            colorize(masks[i], palette),
            colorize(preds[i], palette),
            error_map(preds[i], masks[i]),
        ]
        for j, (ax, panel) in enumerate(zip(axes[i], panels, strict=True)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_axis_off()
            if i == 0:
                ax.set_title(titles[j], fontsize=10)
    # Two legends: the classes (left) and the error map's colours (right), which reuse
    # Okabe-Ito colours and so must not be read as classes. Every colour the error map uses is
    # listed, "ignored" included: its white is often the most visible colour in that panel.
    errors = [
        Patch(facecolor=np.asarray(c) / 255, edgecolor="0.5", label=name)
        for name, c in ERROR_COLORS.items()
    ]
    fig.legend(
        handles=legend_handles(class_names, palette, include_ignore=True),
        loc="outside lower left",
        ncol=min(5, len(class_names) + 1),
        fontsize=8,
        frameon=False,
        title="classes",
        title_fontsize=8,
    )
    fig.legend(
        handles=errors,
        loc="outside lower right",
        ncol=2,
        fontsize=8,
        frameon=False,
        title="errors",
        title_fontsize=8,
    )
    return fig


def _valid_max(mask: Any) -> int:
    values = _numpy(mask)
    values = values[values != IGNORE_INDEX]
    return int(values.max()) if values.size else 0


def plot_history(history: Any) -> Figure:
    """Training curves: loss per epoch (left), val mIoU with the best epoch marked (right).

    The left panel compares like with like: the main head's loss on the training batches
    (`History.train_main_loss`) and on the validation images. A deep-supervised model trains on
    the sum of its heads' losses, on another scale; that total is drawn too, dashed and labelled
    apart, when it differs (the axis fits the two comparable curves: it may run off the top).

    Introduced in `06_visualisation.ipynb`.

    Args:
        history: a `segtutor.config.History` (what `fit` returns) or its `to_dict()`.
    """
    data = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    epochs, total = data["epoch"], _nan(data["train_loss"])
    main = _nan(data.get("train_main_loss") or [])
    if len(main) != len(epochs) or np.isnan(main).all():
        main = total  # a history from before the field, or one head: the total is the main head's
    fig = Figure(figsize=(8, 3), dpi=_DPI, layout="constrained")
    ax_loss, ax_miou = fig.subplots(1, 2)
    ax_loss.plot(epochs, main, "o-", ms=3, label="train")
    ax_loss.plot(epochs, _nan(data["val_loss"]), "o-", ms=3, label="val")
    if not np.allclose(main, total, equal_nan=True):  # deep supervision
        ax_loss.lines[0].set_label("train, main head")
        ax_loss.plot(epochs, total, "--", color="0.6", label="train, all heads (what trains)")
        compared = np.array(main + _nan(data["val_loss"]), dtype=float)
        if np.isfinite(compared).any():  # the scale of the two comparable curves
            ax_loss.set_ylim(0, 1.15 * np.nanmax(compared))
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend(fontsize=8)
    ax_miou.plot(epochs, _nan(data["val_miou"]), "o-", ms=3, color="C1", label="val mIoU")
    best = data.get("best_epoch")
    if best is not None:
        best_miou = data["val_miou"][epochs.index(best)]
        ax_miou.plot(
            [best],
            [best_miou],
            "*",
            ms=12,
            color="C3",
            label=f"best {best_miou:.3f} (epoch {best})",
        )
    ax_miou.set(xlabel="epoch", ylabel="mIoU", title="validation mIoU", ylim=(0, 1))
    ax_miou.legend(fontsize=8, loc="lower right")
    for ax in (ax_loss, ax_miou):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _nan(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def plot_confusion(
    cm: Any,
    class_names: Sequence[str] | None = None,
    normalize: str | None = "true",
) -> Figure:
    """Heatmap of a confusion matrix: rows = true class, columns = predicted class.

    Introduced in `05_evaluation.ipynb`.

    Args:
        cm: a `segtutor.metrics.ConfusionMatrix`, or a `(C, C)` tensor or array of counts.
        class_names: row and column labels; default `class_0`, ...
        normalize: "true" (each row sums to 100%: recall on the diagonal), "pred" (each column:
            precision on the diagonal), "all", or None for raw pixel counts.
    """
    counts = _numpy(cm.matrix if hasattr(cm, "matrix") else cm).astype(np.float64)
    num_classes = counts.shape[0]
    names = list(class_names or [f"class_{c}" for c in range(num_classes)])
    sums = {
        "true": counts.sum(1, keepdims=True),
        "pred": counts.sum(0, keepdims=True),
        "all": counts.sum(),
        None: None,
    }
    if normalize not in sums:
        raise ValueError(f"normalize must be 'true', 'pred', 'all' or None, got {normalize!r}")
    with np.errstate(invalid="ignore", divide="ignore"):
        values = counts if normalize is None else counts / sums[normalize]

    size = min(2.5 + 0.55 * num_classes, 9)
    fig = Figure(figsize=(size + 1, size), dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction" if normalize else "pixels")
    if num_classes <= 12:  # beyond that the numbers would not fit
        threshold = np.nanmax(values) / 2 if np.isfinite(values).any() else 0
        for t in range(num_classes):
            for p in range(num_classes):
                value = values[t, p]
                text = (
                    _count(counts[t, p])
                    if normalize is None
                    else (f"{value:.0%}\n{_count(counts[t, p])}" if np.isfinite(value) else "-")
                )
                ax.text(
                    p,
                    t,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if np.isfinite(value) and value > threshold else "black",
                )
    ax.set_xticks(range(num_classes), names, rotation=45, ha="right")
    ax.set_yticks(range(num_classes), names)
    ax.set(
        xlabel="predicted class",
        ylabel="true class",
        title=f"confusion matrix ({'counts' if normalize is None else 'normalised: ' + normalize})",
    )
    return fig


def _count(n: float) -> str:
    """1234 -> '1.2k', 5600000 -> '5.6M': short pixel counts for the heatmap cells."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{n:.0f}"


# --- one class's hits and misses; predictions over the epochs (issue 16) ---------------------

# class_error_overlay's colours (Okabe-Ito): found, invented, missed.
CLASS_ERROR_COLORS: dict[str, Color] = {
    "true positive": (0, 158, 115),  # bluish green: the class, found
    "false positive": (213, 94, 0),  # vermillion: predicted as the class, is something else
    "false negative": (86, 180, 233),  # sky blue: the class, predicted as something else
}


def class_error_overlay(
    image: Any, pred: Any, mask: Any, class_index: int, alpha: float = 0.6
) -> np.ndarray:
    """One class's true positives, false positives and false negatives tinted onto the image.

    Introduced in `05_evaluation.ipynb`. The pixels IoU counts for class `class_index`
    (TP / (TP + FP + FN)), coloured by `CLASS_ERROR_COLORS`; every other pixel, ignored ones
    included, keeps the image's own colours. Returns uint8 `(H, W, 3)`.

    Args:
        image: `(3, H, W)` (normalised float, float in [0, 1], or uint8) or `(H, W, 3)` uint8.
        pred, mask: `(H, W)` class indices; the mask's 255 pixels are never counted.
    """
    pred, mask = _numpy(pred), _numpy(mask)
    if pred.shape != mask.shape:
        raise ValueError(f"pred {pred.shape} and mask {mask.shape} must have the same shape")
    rgb = to_uint8_image(image).astype(np.float32)
    labelled = mask != IGNORE_INDEX
    predicted, true = (pred == class_index) & labelled, (mask == class_index)
    out = rgb.copy()
    for name, where in (
        ("true positive", predicted & true),
        ("false positive", predicted & ~true),
        ("false negative", ~predicted & true),
    ):
        color = np.asarray(CLASS_ERROR_COLORS[name], dtype=np.float32)
        out[where] = (1 - alpha) * rgb[where] + alpha * color
    return out.round().astype(np.uint8)


def plot_prediction_strip(
    image: Any,
    mask: Any,
    preds: Sequence[Any],
    epochs: Sequence[int],
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    max_panels: int = 8,
) -> Figure:
    """One image, its ground truth, then its prediction after each epoch, in one row.

    Introduced in `04_training.ipynb`: draws what `segtutor.callbacks.PredictionSnapshots`
    recorded. With more predictions than `max_panels`, an even selection is drawn, the first
    and the last always.

    Args:
        image: `(3, H, W)` (normalised float, float in [0, 1], or uint8).
        mask: `(H, W)` class indices.
        preds: one `(H, W)` prediction per recorded epoch.
        epochs: the epoch number of each prediction (the panels' titles).
    """
    if len(preds) != len(epochs) or not preds:
        raise ValueError(f"need one epoch per prediction, got {len(preds)} and {len(epochs)}")
    keep = np.unique(np.linspace(0, len(preds) - 1, min(max_panels, len(preds))).round())
    names = list(class_names or [f"class_{c}" for c in range(1 + _valid_max(mask))])
    palette = list(palette) if palette is not None else make_palette(len(names))
    panels = [(to_uint8_image(image), "image"), (colorize(mask, palette), "ground truth")]
    panels += [(colorize(preds[int(i)], palette), f"epoch {epochs[int(i)]}") for i in keep]
    fig = Figure(figsize=(min(1.25 * len(panels), 10), 1.9), dpi=_DPI, layout="constrained")
    for ax, (picture, title) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.legend(
        handles=legend_handles(names, palette, include_ignore=True),
        loc="outside lower center",
        ncol=len(names) + 1,
        fontsize=8,
        frameon=False,
    )
    return fig


def plot_unet_shapes(model: Any, input_size: Sequence[int] = (1, 3, 128, 128)) -> Figure:
    """The U of a `segtutor.model.UNet`, drawn from the shapes its parts output on `input_size`.

    One box per part (`inc`, each `Down`, each `Up`, `outc`), labelled with its output's
    channels and height x width; the box's height follows the grid (halved at each level) and
    its width the channels. Arrows: down the encoder, up the decoder, and dashed skips from
    each encoder level to the `Up` that concatenates it.

    Introduced in `02_unet.ipynb`.

    Args:
        model: a `UNet` (anything with `inc`, `downs`, `ups`, `outc`); run once in eval mode
            without gradients, its training mode restored after.
        input_size: `(N, C, H, W)` of the zero batch it is run on.
    """
    parts = [("inc", model.inc)] + [(f"downs[{i}]", m) for i, m in enumerate(model.downs)]
    parts += [(f"ups[{i}]", m) for i, m in enumerate(model.ups)] + [("outc", model.outc)]
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):  # a forward hook that returns None leaves the output as it is
        return lambda module, args, out: shapes.update({name: tuple(out.shape)})

    hooks = [module.register_forward_hook(record(name)) for name, module in parts]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(*input_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()

    depth = len(model.downs)
    # (column, level) of each part: the encoder goes down, the decoder comes back up.
    where = {"inc": (0, 0), "outc": (2 * depth + 1, 0)}
    where |= {f"downs[{i}]": (i + 1, i + 1) for i in range(depth)}
    where |= {f"ups[{i}]": (depth + 1 + i, depth - 1 - i) for i in range(depth)}
    top_height, top_channels = shapes["inc"][2], max(s[1] for s in shapes.values())
    size = (min(1.1 * (2 * depth + 2), 10), min(0.6 + 0.7 * (depth + 1), 4))
    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    ax = fig.subplots()
    for name, (col, level) in where.items():
        _, channels, height, width = shapes[name]
        box_h = 0.25 + 0.45 * height / top_height  # (0.25, 0.7]: shrinks with the grid
        box_w = 0.8 + 0.18 * np.log2(channels + 1) / np.log2(top_channels + 1)
        color = "#d9ead3" if name.startswith("ups") else "#cfe2f3"
        corner = (col - box_w / 2, -level - box_h / 2)
        style = "round,pad=0.02"
        ax.add_patch(FancyBboxPatch(corner, box_w, box_h, boxstyle=style, fc=color, ec="0.3"))
        label = f"{name}\n{channels}×{height}×{width}"
        ax.text(col, -level, label, ha="center", va="center", fontsize=6.5)
    order = ["inc"] + [f"downs[{i}]" for i in range(depth)]
    order += [f"ups[{i}]" for i in range(depth)] + ["outc"]
    for a, b in zip(order, order[1:], strict=False):
        (x0, y0), (x1, y1) = where[a], where[b]
        ax.annotate("", (x1 - 0.4, -y1), (x0 + 0.4, -y0), arrowprops={"arrowstyle": "->"})
    for i in range(depth):  # ups[i] concatenates the encoder's output at its own level
        skip = "inc" if i == depth - 1 else f"downs[{depth - 2 - i}]"
        (x0, y0), (x1, _) = where[skip], where[f"ups[{i}]"]
        ax.annotate("", (x1 - 0.5, -y0 + 0.1), (x0 + 0.5, -y0 + 0.1),
                    arrowprops={"arrowstyle": "->", "linestyle": "--", "color": "0.5"})  # fmt: skip
    ax.text(depth + 0.5, 0.45, "dashed: skip connections (concatenated)", ha="center", fontsize=7)
    ax.set(xlim=(-0.6, 2 * depth + 1.6), ylim=(-depth - 0.45, 0.65))
    ax.set_title(f"U-Net on {tuple(input_size)}: output of each part, channels×H×W", fontsize=9)
    ax.axis("off")
    return fig
