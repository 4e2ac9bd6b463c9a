"""Tests for segtutor.viz: exact colours for known inputs, figures built without pyplot."""

from __future__ import annotations

import importlib

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from segtutor import viz
from segtutor.config import History
from segtutor.settings import IMAGENET_MEAN, IMAGENET_STD
from segtutor.viz import (
    DEFAULT_PALETTE,
    ERROR_COLORS,
    IGNORE_COLOR,
    colorize,
    error_map,
    legend_handles,
    make_palette,
    overlay,
    plot_confusion,
    plot_history,
    plot_predictions,
    to_uint8_image,
)


def test_default_palette_is_okabe_ito_on_black():
    assert DEFAULT_PALETTE[0] == (0, 0, 0)
    assert DEFAULT_PALETTE[1:4] == [(230, 159, 0), (86, 180, 233), (0, 158, 115)]
    assert IGNORE_COLOR == (255, 255, 255) and IGNORE_COLOR not in DEFAULT_PALETTE
    assert make_palette(3) == DEFAULT_PALETTE[:3]
    assert len(set(make_palette(20))) == 20


def test_colorize_known_mask():
    mask = torch.tensor([[0, 1], [2, 255]])
    rgb = colorize(mask)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert [tuple(int(v) for v in rgb[i, j]) for i in range(2) for j in range(2)] == [
        DEFAULT_PALETTE[0],
        DEFAULT_PALETTE[1],
        DEFAULT_PALETTE[2],
        IGNORE_COLOR,
    ]
    custom = colorize(mask.numpy(), palette=[(1, 2, 3), (4, 5, 6), (7, 8, 9)])
    assert tuple(custom[1, 0]) == (7, 8, 9)


def test_colorize_palette_too_short():
    with pytest.raises(ValueError, match=r"class 3 but the palette has 2 colours"):
        colorize(np.array([[0, 3]]), palette=[(0, 0, 0), (1, 1, 1)])


def test_overlay_tints_objects_only():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 1], [255, 1]])
    out = overlay(image, mask, alpha=0.5)
    assert tuple(out[0, 0]) == (100, 100, 100)  # background keeps the image
    assert tuple(out[1, 0]) == (100, 100, 100)  # ignored too
    assert tuple(out[0, 1]) == (165, 130, 50)  # halfway to orange (230, 159, 0)


def test_to_uint8_image_denormalises():
    original = torch.rand(3, 4, 5)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    normalised = (original - mean) / std
    expected = (original.permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(to_uint8_image(normalised).astype(int) - expected).max() <= 1
    assert np.abs(to_uint8_image(original).astype(int) - expected).max() <= 1  # [0, 1] floats
    as_uint8 = (original * 255).to(torch.uint8)
    assert np.array_equal(to_uint8_image(as_uint8), as_uint8.permute(1, 2, 0).numpy())


def test_error_map_counts_each_kind_exactly():
    mask = np.array([[0, 0, 1, 1, 2, 255], [0, 2, 1, 2, 0, 255]])
    pred = np.array([[0, 1, 1, 0, 1, 0], [2, 2, 1, 0, 0, 1]])
    # correct: (0,0) (0,2) (1,1) (1,2) (1,4) = 5; false positive (truth 0, pred object): (0,1)
    # (1,0) = 2; false negative (truth object, pred 0): (0,3) (1,3) = 2; wrong class (2 -> 1):
    # (0,4) = 1; ignored: 2.
    out = error_map(pred, mask)
    counts = {
        name: int(np.all(out == np.array(color), axis=-1).sum())
        for name, color in ERROR_COLORS.items()
    }
    assert counts == {
        "correct": 5,
        "false positive": 2,
        "false negative": 2,
        "wrong class": 1,
        "ignored": 2,
    }
    binary = error_map(torch.tensor([[1, 0, 1]]), torch.tensor([[0, 1, 1]]))
    assert [tuple(c) for c in binary[0]] == [
        ERROR_COLORS["false positive"],
        ERROR_COLORS["false negative"],
        ERROR_COLORS["correct"],
    ]


def test_legend_handles():
    handles = legend_handles(["background", "disc"], include_ignore=True)
    assert [h.get_label() for h in handles] == ["background", "disc", "ignore"]
    assert tuple(handles[1].get_facecolor()[:3]) == pytest.approx((230 / 255, 159 / 255, 0))


def test_plot_predictions_grid_of_varying_sizes():
    images = [torch.randn(3, 8, 8), torch.rand(3, 6, 10), torch.randn(3, 4, 4)]
    masks = [torch.randint(0, 3, im.shape[1:]) for im in images]
    preds = [torch.randint(0, 3, im.shape[1:]) for im in images]
    fig = plot_predictions(images, masks, preds, class_names=["bg", "a", "b"], max_rows=2)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == [
        "image",
        "ground truth",
        "prediction",
        "errors",
    ]
    fig.canvas.draw()  # renders without error
    legends = {legend.get_title().get_text(): legend for legend in fig.legends}
    error_labels = [text.get_text() for text in legends["errors"].get_texts()]
    assert error_labels == list(ERROR_COLORS)  # every colour of the error map, "ignored" too
    assert "ignored" in error_labels
    batch = plot_predictions(
        torch.randn(5, 3, 8, 8), torch.randint(0, 2, (5, 8, 8)), torch.randint(0, 2, (5, 8, 8))
    )
    assert len(batch.axes) == 4 * 4


def test_plot_history_from_history_and_dict():
    history = History(
        epoch=[1, 2, 3],
        train_loss=[1.0, 0.6, 0.4],
        val_loss=[0.9, 0.7, 0.6],
        val_iou=[[0.5, 0.1]] * 3,
        val_miou=[0.3, 0.6, 0.5],
        val_pixel_accuracy=[0.7] * 3,
        lr=[1e-3] * 3,
        epoch_time_s=[1.0] * 3,
    )
    for source in (history, history.to_dict()):
        fig = plot_history(source)
        loss_ax, miou_ax = fig.axes
        assert list(loss_ax.lines[0].get_ydata()) == [1.0, 0.6, 0.4]
        best = miou_ax.lines[1]  # the star on the best epoch
        assert (list(best.get_xdata()), list(best.get_ydata())) == ([2], [0.6])


def test_plot_history_compares_the_main_heads_training_loss_with_val():
    history = History(
        epoch=[1, 2],
        train_loss=[3.0, 1.5],  # deep supervision: the main head's loss plus the coarse heads'
        train_main_loss=[1.2, 0.6],
        val_loss=[1.0, 0.7],
        val_iou=[[0.5, 0.1]] * 2,
        val_miou=[0.3, 0.6],
        val_pixel_accuracy=[0.7] * 2,
        lr=[1e-3] * 2,
        epoch_time_s=[1.0] * 2,
    )
    loss_ax = plot_history(history).axes[0]
    lines = {line.get_label(): list(line.get_ydata()) for line in loss_ax.lines}
    assert lines == {
        "train, main head": [1.2, 0.6],
        "val": [1.0, 0.7],
        "train, all heads (what trains)": [3.0, 1.5],
    }
    assert loss_ax.get_ylim() == pytest.approx((0, 1.15 * 1.2))  # fits main head and val
    one_head = History.from_dict({**history.to_dict(), "train_main_loss": [3.0, 1.5]})
    labels = [line.get_label() for line in plot_history(one_head).axes[0].lines]
    assert labels == ["train", "val"]  # nothing to tell apart


def test_plot_confusion_annotates_percentages_and_counts():
    matrix = torch.tensor([[3, 1], [0, 2000]])
    fig = plot_confusion(matrix, class_names=["bg", "disc"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["75%\n3", "25%\n1", "0%\n0", "100%\n2.0k"]
    counts = plot_confusion(matrix.numpy(), normalize=None)
    assert [t.get_text() for t in counts.axes[0].texts] == ["3", "1", "0", "2.0k"]
    with pytest.raises(ValueError, match="normalize"):
        plot_confusion(matrix, normalize="rows")


def test_plot_confusion_by_columns_shows_precision():
    # background predicted as bar: bar's recall (its row) is perfect, its precision is not
    matrix = torch.tensor([[90, 10], [0, 30]])  # rows: truth (bg, bar); columns: prediction
    rows = [t.get_text() for t in plot_confusion(matrix, normalize="true").axes[0].texts]
    columns = plot_confusion(matrix, ["bg", "bar"], normalize="pred").axes[0]
    assert rows == ["90%\n90", "10%\n10", "0%\n0", "100%\n30"]
    assert [t.get_text() for t in columns.texts] == ["100%\n90", "25%\n10", "0%\n0", "75%\n30"]
    assert columns.get_title() == "confusion matrix (normalised: pred)"


def test_plot_confusion_accepts_a_confusion_matrix():
    from segtutor.metrics import ConfusionMatrix

    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 0]]))
    texts = [t.get_text() for t in plot_confusion(cm).axes[0].texts]
    assert texts == ["50%\n1", "50%\n1", "0%\n0", "100%\n1"]


def test_no_pyplot_figures_and_no_rcparams_at_import():
    import matplotlib.pyplot as plt

    before = dict(matplotlib.rcParams)
    importlib.reload(viz)
    assert dict(matplotlib.rcParams) == before
    plt.close("all")
    viz.plot_history(
        History(
            epoch=[1],
            train_loss=[1.0],
            val_loss=[1.0],
            val_iou=[[0.5]],
            val_miou=[0.5],
            val_pixel_accuracy=[0.5],
            lr=[0.1],
            epoch_time_s=[1.0],
        )
    )
    assert plt.get_fignums() == []  # figures are not registered with pyplot: no double display


# ---- class_error_overlay and plot_prediction_strip (issue 16) --------------------------------


def test_class_error_overlay_tints_exactly_the_pixels_iou_counts():
    image = np.full((2, 4, 3), 100, dtype=np.uint8)  # (H, W, 3) grey
    mask = torch.tensor([[1, 1, 0, 255], [2, 1, 0, 0]])
    pred = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 2]])
    out = viz.class_error_overlay(image, pred, mask, class_index=1, alpha=1.0)
    tp, fp, fn = (viz.CLASS_ERROR_COLORS[k] for k in ("true positive", "false positive",
                                                     "false negative"))  # fmt: skip
    expected = [[tp, fn, fp, (100, 100, 100)], [fp, tp, (100, 100, 100), (100, 100, 100)]]
    assert out.dtype == np.uint8 and out.tolist() == [[list(c) for c in row] for row in expected]
    half = viz.class_error_overlay(image, pred, mask, class_index=1, alpha=0.5)
    assert half[0, 0].tolist() == [round(50 + t / 2) for t in tp]  # blended, not replaced
    with pytest.raises(ValueError, match="same shape"):
        viz.class_error_overlay(image, pred[:1], mask, class_index=1)


def test_plot_prediction_strip_draws_image_truth_and_chosen_epochs():
    image = torch.rand(3, 8, 8)
    mask = torch.zeros(8, 8, dtype=torch.int64)
    mask[2:5, 2:5] = 2
    preds = [torch.full((8, 8), e % 3) for e in range(1, 21)]
    fig = viz.plot_prediction_strip(image, mask, preds, list(range(1, 21)), ["bg", "a", "b"],
                                    max_panels=5)  # fmt: skip
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["image", "ground truth", "epoch 1", "epoch 6", "epoch 11", "epoch 15",
                      "epoch 20"]  # fmt: skip
    shown = fig.axes[3].get_images()[0].get_array()  # epoch 6: class 0 everywhere, black
    assert np.asarray(shown)[0, 0].tolist() == list(DEFAULT_PALETTE[0])
    with pytest.raises(ValueError, match="one epoch per prediction"):
        viz.plot_prediction_strip(image, mask, preds, [1, 2])


def test_plot_unet_shapes_labels_each_part_with_the_models_own_shapes():
    from segtutor.model import UNet

    model = UNet(num_classes=3, base_width=16, depth=3).train()
    fig = viz.plot_unet_shapes(model, (2, 3, 96, 160))
    labels = {t.get_text().split("\n")[0]: t.get_text().split("\n")[1]
              for t in fig.axes[0].texts if "\n" in t.get_text()}  # fmt: skip
    assert labels == {"inc": "16×96×160", "downs[0]": "32×48×80", "downs[1]": "64×24×40",
                      "downs[2]": "128×12×20", "ups[0]": "64×24×40", "ups[1]": "32×48×80",
                      "ups[2]": "16×96×160", "outc": "3×96×160"}  # fmt: skip
    assert model.training  # its mode restored
    assert len(fig.axes[0].patches) == 8
