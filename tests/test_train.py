"""Tests for segtutor.train: the epoch, reproducibility, checkpoints written by fit, resume, stopping
rules, evaluation. (Checkpoint files themselves: test_checkpoint.py; devices: test_runtime.py.)"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import segtutor.runtime
from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
from segtutor.data import make_loader
from segtutor.errors import CheckpointError
from segtutor.inference import predict_logits
from segtutor.runtime import seed_everything
from segtutor.train import (
    Callback,
    History,
    TrainConfig,
    evaluate,
    fit,
    scheduled_lr,
    should_stop,
    train_one_epoch,
    validate,
)

NUM_CLASSES = 3
COLORS = torch.tensor([[0.1, 0.1, 0.1], [0.9, 0.2, 0.1], [0.1, 0.3, 0.9]])  # one per class

CONFIG = TrainConfig(
    num_epochs=3, lr=0.05, num_classes=NUM_CLASSES, progress=False, seed=0, device="cpu"
)


def colour_dataset(n: int = 12, size: int = 16, seed: int = 0) -> TensorDataset:
    """Images whose pixel colour gives the class (plus noise): a 1x1 convolution can learn it."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, NUM_CLASSES, (n, size // 4, size // 4), generator=g)
    masks = masks.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (N, H, W) in 4x4 blocks
    images = COLORS[masks].permute(0, 3, 1, 2)  # (N, 3, H, W)
    images = images + 0.05 * torch.randn(images.shape, generator=g)
    masks[:, 0, :] = 255  # an ignored border row, as in real masks
    return TensorDataset(images, masks)


def new_model(seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return nn.Conv2d(3, NUM_CLASSES, kernel_size=1)


def loaders(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    train = make_loader(colour_dataset(12), batch_size=4, shuffle=True, seed=seed)
    val = make_loader(colour_dataset(6, seed=1), batch_size=3)
    return train, val


def same_numbers(a: History, b: History) -> bool:
    da, db = a.to_dict(), b.to_dict()
    for measured in ("epoch_time_s", "val_time_s"):  # seconds on the clock, not results
        da.pop(measured), db.pop(measured)
    return da == db


def test_same_seed_gives_identical_history():
    runs = [fit(new_model(), *loaders(), CONFIG) for _ in range(2)]
    assert same_numbers(*runs)
    other = fit(new_model(seed=1), *loaders(seed=1), CONFIG)
    assert other.train_loss != runs[0].train_loss


def test_overfits_a_tiny_dataset():
    history = fit(new_model(), *loaders(), replace(CONFIG, num_epochs=15, lr=0.3))
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
    assert history.best_miou > 0.95
    assert history.stop_reason == "num_epochs"
    assert len(history.val_iou[-1]) == NUM_CLASSES


def test_history_round_trips_and_is_json_safe():
    history = History(
        epoch=[1, 2],
        train_loss=[1.0, 0.5],
        val_loss=[0.9, 0.6],
        val_iou=[[0.5, math.nan], [0.7, 0.8]],
        val_miou=[0.5, 0.75],
        val_pixel_accuracy=[0.8, 0.9],
        lr=[0.1, 0.1],
        epoch_time_s=[1.0, 1.0],
    )
    data = history.to_dict()
    assert data["val_iou"][0][1] is None  # NaN -> None for JSON
    assert (data["best_epoch"], data["best_miou"]) == (2, 0.75)
    again = History.from_dict(data)
    assert math.isnan(again.val_iou[0][1]) and again.val_miou == history.val_miou


def test_checkpoint_is_atomic_plain_and_holds_the_best(tmp_path):
    path = tmp_path / "runs" / "best.pt"
    model = new_model()
    history = fit(model, *loaders(), replace(CONFIG, checkpoint_path=str(path)))
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temporary files left
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["format"] == "segtutor-checkpoint" and raw["version"] == 1
    assert raw["epoch"] == history.best_epoch
    assert raw["config"]["lr"] == CONFIG.lr and raw["model_config"] is None  # not a UNet
    assert raw["history"]["best_miou"] == pytest.approx(history.best_miou)
    for name, value in model.state_dict().items():  # the model ends on the best weights too
        torch.testing.assert_close(raw["model_state"][name], value, rtol=0, atol=0)


def test_resume_continues_the_run_exactly(tmp_path):
    config = replace(CONFIG, num_epochs=4, scheduler="cosine")
    straight = fit(new_model(), *loaders(), config)

    # Stop after 2 of the planned 4 epochs (a callback; num_epochs=2 would plan a shorter
    # lr schedule), then resume: the same numbers as the uninterrupted run.
    path = tmp_path / "best.pt"
    first = fit(
        new_model(),
        *loaders(),
        replace(config, checkpoint_path=str(path)),
        callbacks=[lambda epoch, history: epoch == 2],
    )
    assert first.stop_reason == "callback"
    assert load_checkpoint(path)["epoch"] == 2 == first.best_epoch  # the resume point
    resumed = fit(new_model(seed=123), *loaders(), config, resume_from=path)
    assert resumed.epoch == [1, 2, 3, 4]
    assert same_numbers(resumed, straight)


def test_resuming_with_another_batch_size_is_refused_not_rescheduled(tmp_path):
    path = tmp_path / "last.pt"
    fit(new_model(), *loaders(), replace(CONFIG, num_epochs=2, last_checkpoint_path=str(path)))
    _, val = loaders()
    train = make_loader(colour_dataset(12), batch_size=1, shuffle=True, seed=0)  # 12, not 3
    with pytest.raises(CheckpointError, match=r"6 training steps in 2 epoch.*12 batches"):
        fit(new_model(), train, val, replace(CONFIG, num_epochs=4), resume_from=path)
    resumed = fit(new_model(), *loaders(), replace(CONFIG, num_epochs=4), resume_from=path)
    assert resumed.epoch == [1, 2, 3, 4]


def test_last_checkpoint_resumes_from_the_latest_epoch_and_keeps_the_best(tmp_path):
    config = replace(CONFIG, num_epochs=4, scheduler="cosine")
    straight_model = new_model()
    straight = fit(straight_model, *loaders(), config)

    best_path, last_path = tmp_path / "best.pt", tmp_path / "last.pt"
    first = fit(
        new_model(),
        *loaders(),
        replace(config, checkpoint_path=str(best_path), last_checkpoint_path=str(last_path)),
        callbacks=[lambda epoch, history: epoch == 3],
    )
    last = load_checkpoint(last_path)
    assert last["epoch"] == 3 == len(first)  # the latest epoch, whichever was best
    best = load_checkpoint(best_path)
    assert best["epoch"] == first.best_epoch
    for key, value in best["model_state"].items():  # the best weights travel inside last.pt
        assert torch.equal(last["best_model_state"][key], value), key

    resumed_model = new_model(seed=123)
    resumed = fit(resumed_model, *loaders(), config, resume_from=last_path)
    assert resumed.epoch == [1, 2, 3, 4]
    assert same_numbers(resumed, straight)
    for key, value in straight_model.state_dict().items():  # ends on the same best epoch
        assert torch.equal(resumed_model.state_dict()[key], value), key


def test_resume_with_more_epochs_continues_the_history(tmp_path):
    path = tmp_path / "best.pt"
    config = replace(CONFIG, num_epochs=2, checkpoint_path=str(path))
    first = fit(new_model(), *loaders(), config)
    best = first.best_epoch  # the checkpoint holds the best epoch: training resumes after it
    more = fit(new_model(), *loaders(), replace(config, num_epochs=4), resume_from=path)
    assert more.epoch == [1, 2, 3, 4]
    assert more.train_loss[:best] == first.train_loss[:best]
    assert more.val_miou[:best] == first.val_miou[:best]
    assert load_checkpoint(path)["history"]["epoch"][0] == 1


def test_time_budget_stops_cleanly_and_keeps_the_best(tmp_path):
    path = tmp_path / "best.pt"
    model = new_model()
    # amp=False: on a CPU with native bfloat16, fit validates under autocast and `evaluate` in
    # float32, and the two mIoUs compared below may then differ in the last pixels
    config = replace(
        CONFIG, num_epochs=1000, time_budget_s=0.5, checkpoint_path=str(path), amp=False
    )
    history = fit(model, *loaders(), config)
    assert history.stop_reason == "time_budget"
    assert 1 <= len(history) < 1000
    assert sum(history.epoch_time_s) < 5  # generous: other processes may share the CPU
    # The schedule was stretched to end with the budget, not with the 1000 planned epochs.
    assert history.lr[-1] < 0.25 * CONFIG.lr
    cm = evaluate(model, loaders()[1], NUM_CLASSES)
    assert float(cm.miou()) == pytest.approx(history.best_miou)
    saved = load_checkpoint(path)["model_state"]
    torch.testing.assert_close(saved["weight"], model.weight.detach(), rtol=0, atol=0)


@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="torch.compile needs a C compiler on a CPU",
)
@pytest.mark.slow  # compiles the model
def test_compile_option_trains_the_same_model():
    config = replace(CONFIG, num_epochs=2)
    plain = fit(new_model(), *loaders(), config)
    compiled_model = new_model()
    compiled = fit(compiled_model, *loaders(), replace(config, compile=True))
    # the same maths, fused differently: equal up to float rounding
    np.testing.assert_allclose(compiled.train_loss, plain.train_loss, rtol=1e-4)
    np.testing.assert_allclose(compiled.val_miou, plain.val_miou, atol=1e-6)
    assert type(compiled_model) is nn.Conv2d  # fit compiles a wrapper, not the caller's model


def test_bf16_autocast_on_a_cpu_that_has_it(monkeypatch):
    monkeypatch.setattr(segtutor.runtime, "cpu_has_native_bf16", lambda: True)
    model = new_model()
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    history = fit(model, *loaders(), replace(CONFIG, num_epochs=4))
    assert torch.bfloat16 in seen  # training ran under bf16 autocast
    assert history.train_loss[-1] < history.train_loss[0]  # and still learned (no scaler needed)
    assert next(model.parameters()).dtype == torch.float32  # the weights stay float32
    without = fit(new_model(), *loaders(), replace(CONFIG, num_epochs=1, amp=False))
    assert len(without) == 1


def test_evaluate_in_fits_precision_gives_fits_numbers(monkeypatch):
    monkeypatch.setattr(segtutor.runtime, "cpu_has_native_bf16", lambda: True)
    model = new_model()
    history = fit(model, *loaders(), replace(CONFIG, num_epochs=3, amp=True))
    assert history.speed.startswith("bfloat16")
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    cm = evaluate(model, loaders()[1], NUM_CLASSES, amp_dtype=torch.bfloat16)
    assert seen and set(seen) == {torch.bfloat16}  # the model ran under autocast
    assert float(cm.miou()) == history.best_miou  # exactly what fit recorded
    seen.clear()
    evaluate(model, loaders()[1], NUM_CLASSES)
    assert set(seen) == {torch.float32}  # the default: float32


def test_early_stopping():
    # lr = 0: the weights never change, so val mIoU never improves after epoch 1.
    config = replace(CONFIG, num_epochs=10, lr=0.0, early_stopping_patience=2)
    history = fit(new_model(), *loaders(), config)
    assert history.epoch == [1, 2, 3]
    assert history.stop_reason == "early_stopping" and history.best_epoch == 1


def test_nan_loss_stops_with_a_clear_message():
    images, masks = colour_dataset(8).tensors
    images[3, 0, 5, 5] = math.nan
    train = DataLoader(TensorDataset(images, masks), batch_size=4)
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1/2 .*Lower the learning rate"):
        fit(new_model(), train, loaders()[1], CONFIG)


def test_callbacks_are_called_and_can_stop():
    class Recorder(Callback):
        def __init__(self):
            self.batches, self.epochs, self.ended = [], [], 0

        def on_batch_end(self, epoch, step, loss):
            self.batches.append((epoch, step))

        def on_epoch_end(self, epoch, history):
            self.epochs.append((epoch, len(history)))

        def on_train_end(self, history):
            self.ended += 1

    recorder = Recorder()
    history = fit(
        new_model(),
        *loaders(),
        replace(CONFIG, num_epochs=5),
        callbacks=[recorder, lambda epoch, history: epoch == 2],
    )
    assert history.stop_reason == "callback" and len(history) == 2
    assert recorder.epochs == [(1, 1), (2, 2)]
    assert recorder.batches == [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (2, 6)]
    assert recorder.ended == 1


class ConstantModel(nn.Module):
    """Predicts class 1 everywhere, at half the input resolution (so logits must be resized)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images):
        n, _, h, w = images.shape
        logits = torch.zeros(n, NUM_CLASSES, h // 2, w // 2)
        logits[:, 1] = 1
        return logits * self.scale


def test_evaluate_images_of_varying_sizes():
    samples = []
    for h, w in [(8, 12), (16, 10), (6, 6)]:
        mask = torch.arange(h * w).reshape(h, w) % NUM_CLASSES
        mask[0, 0] = 255
        samples.append((torch.rand(3, h, w), mask))
    loader = DataLoader(samples, batch_size=1)
    cm = evaluate(ConstantModel(), loader, NUM_CLASSES)
    expected = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    for _, mask in samples:  # every labelled pixel is predicted as class 1
        expected[:, 1] += torch.bincount(mask[mask != 255], minlength=NUM_CLASSES)
    assert torch.equal(cm.matrix.cpu(), expected)


def test_onecycle_follows_torch_onecycle():
    config = replace(CONFIG, lr=1e-2, scheduler="onecycle")
    total = 1000
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    oracle = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total, cycle_momentum=False
    )
    for step in range(total):
        expected = optimizer.param_groups[0]["lr"]
        assert scheduled_lr(config, step / (total - 1)) == pytest.approx(
            expected, abs=0.01 * config.lr
        )
        optimizer.step()
        oracle.step()
    assert scheduled_lr(replace(config, scheduler="cosine"), 1.0) == pytest.approx(0.0)
    assert scheduled_lr(replace(config, scheduler="none"), 0.7) == config.lr


def test_make_loader_shuffles_reproducibly():
    data = TensorDataset(torch.arange(20))

    def order(seed):
        return [int(x) for (batch,) in make_loader(data, 5, shuffle=True, seed=seed) for x in batch]

    assert order(0) == order(0) != order(1)
    assert sorted(order(0)) == list(range(20))


def test_unet_round_trips_through_a_checkpoint(tmp_path):
    from segtutor.model import UNet

    seed_everything(0)
    model = UNet(num_classes=NUM_CLASSES, base_width=4, depth=2)
    path = tmp_path / "best.pt"
    fit(model, *loaders(), replace(CONFIG, num_epochs=1, checkpoint_path=str(path)))
    checkpoint = load_checkpoint(path)
    assert checkpoint["model_config"] == dict(
        name="unet",
        in_channels=3,
        num_classes=NUM_CLASSES,
        base_width=4,
        depth=2,
        bilinear=False,
        decoder_convs=2,
        deep_supervision=False,
    )
    rebuilt = model_from_checkpoint(checkpoint)
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(predict_logits(rebuilt, images), predict_logits(model, images))
    # a checkpoint written before deep supervision existed has no such key: a plain UNet
    del checkpoint["model_config"]["deep_supervision"]
    assert not model_from_checkpoint(checkpoint).deep_supervision
    # nor a decoder_convs: the paper's two convolutions per decoder level
    del checkpoint["model_config"]["decoder_convs"]
    assert model_from_checkpoint(checkpoint).decoder_convs == 2


def test_fit_trains_the_heads_of_a_deeply_supervised_unet(tmp_path):
    from segtutor.model import UNet

    seed_everything(0)
    model = UNet(num_classes=NUM_CLASSES, base_width=4, depth=2, deep_supervision=True)
    heads_before = [p.detach().clone() for p in model.aux_heads.parameters()]
    path = tmp_path / "best.pt"
    history = fit(model, *loaders(), replace(CONFIG, num_epochs=2, checkpoint_path=str(path)))
    assert all(math.isfinite(x) for x in history.train_loss + history.val_loss)
    # only the auxiliary losses reach the heads: fit must have added them
    heads_after = list(model.aux_heads.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(heads_before, heads_after, strict=True))
    rebuilt = model_from_checkpoint(path)
    assert rebuilt.deep_supervision and not rebuilt.training
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(predict_logits(rebuilt, images), predict_logits(model, images))


def test_deep_supervision_adds_the_heads_losses_to_the_training_loss():
    from segtutor.losses import DeepSupervisionLoss, build_loss
    from segtutor.model import UNet

    recorded = []

    class Recording(nn.Module):  # the plain loss, remembering what fit passed it
        def __init__(self):
            super().__init__()
            self.loss = build_loss("ce", NUM_CLASSES)

        def forward(self, outputs, masks):
            recorded.append(outputs)
            return self.loss(outputs, masks)

    seed_everything(0)
    model = UNet(num_classes=NUM_CLASSES, base_width=4, depth=2, deep_supervision=True)
    fit(model, *loaders(), replace(CONFIG, num_epochs=1), loss_fn=Recording())
    # in training: the main logits, then the one coarse level's at half the size, each on its
    # own (fit wrapped the loss in DeepSupervisionLoss); in validation: the logits alone
    shapes = [tuple(o.shape) for o in recorded]
    assert shapes[:2] == [(4, NUM_CLASSES, 16, 16), (4, NUM_CLASSES, 8, 8)]
    assert all(isinstance(o, torch.Tensor) for o in recorded)
    # a loss that is already a DeepSupervisionLoss is used as given (not wrapped twice): with
    # weight 0 the heads get no gradient, and AdamW only decays them by lr * weight_decay
    heads_before = [p.detach().clone() for p in model.aux_heads.parameters()]
    explicit = DeepSupervisionLoss(build_loss("ce", NUM_CLASSES), weights=[0.0])
    fit(model, *loaders(), replace(CONFIG, num_epochs=1), loss_fn=explicit)
    for before, after in zip(heads_before, model.aux_heads.parameters(), strict=True):
        torch.testing.assert_close(after.detach(), before, rtol=1e-4, atol=0)


def test_fit_trains_on_prior_adjusted_logits_when_the_config_says_so():
    from segtutor.losses import PriorAdjustedLoss, build_loss

    weights = [0.5, 1.0, 3.0]
    config = replace(CONFIG, loss="ce", class_weights=weights, prior_adjustment=1.0)
    adjusted = fit(new_model(), *loaders(), config)
    explicit = PriorAdjustedLoss(build_loss("ce", NUM_CLASSES, class_weights=weights), weights)
    assert same_numbers(adjusted, fit(new_model(), *loaders(), config, loss_fn=explicit))
    plain = fit(new_model(), *loaders(), replace(config, prior_adjustment=0.0))
    assert plain.train_loss != adjusted.train_loss
    both = replace(config, loss="ce+dice")  # the cross-entropy term alone is adjusted
    term = build_loss("ce+dice", NUM_CLASSES, class_weights=weights, prior_adjustment=1.0)
    assert same_numbers(fit(new_model(), *loaders(), both),
                        fit(new_model(), *loaders(), both, loss_fn=term))  # fmt: skip
    with pytest.raises(ValueError, match="prior_adjustment must be 0 or more"):
        fit(new_model(), *loaders(), replace(config, prior_adjustment=-1.0))
    # Dice alone weights its mean over classes, not a likelihood: nothing to adjust
    dice = replace(config, loss="dice")
    assert same_numbers(fit(new_model(), *loaders(), dice),
                        fit(new_model(), *loaders(), replace(dice, prior_adjustment=0.0)))  # fmt: skip


def test_fit_logs_the_main_heads_training_loss_on_the_val_loss_scale():
    from segtutor.losses import build_loss, shrink_masks
    from segtutor.model import UNet

    seed_everything(0)
    model = UNet(num_classes=NUM_CLASSES, base_width=4, depth=2, deep_supervision=True)
    # lr 0: the weights stay as they were, so the losses can be recomputed after fit
    frozen = replace(
        CONFIG, num_epochs=1, lr=0.0, weight_decay=0.0, scheduler="none", amp=False,
        channels_last=False,
    )  # fmt: skip
    train_loader = make_loader(colour_dataset(12), batch_size=4)  # not shuffled: batches known
    history = fit(model, train_loader, loaders()[1], frozen)
    loss, main_sum, total_sum, count = build_loss(frozen.loss, NUM_CLASSES), 0.0, 0.0, 0
    model.train()  # BatchNorm on each batch's statistics, as during the epoch
    with torch.no_grad():
        for images, masks in train_loader:
            logits, aux = model(images)
            main_sum += loss(logits, masks).item() * len(images)
            coarse_masks = shrink_masks(masks, aux[0].shape[-2:])  # the head sees 1/2 the size
            total_sum += (loss(logits, masks) + 0.5 * loss(aux[0], coarse_masks)).item() * len(
                images
            )
            count += len(images)
    assert history.train_main_loss[0] == pytest.approx(main_sum / count, rel=1e-5)
    assert history.train_loss[0] == pytest.approx(total_sum / count, rel=1e-5)
    assert history.train_main_loss[0] < history.train_loss[0]  # the heads add to the total
    # one head: the main head's loss is the training loss
    plain = fit(new_model(), *loaders(), replace(CONFIG, num_epochs=2))
    assert plain.train_main_loss == plain.train_loss
    # a history written before the field existed reads back with NaN, one per epoch
    old = {k: v for k, v in plain.to_dict().items() if k != "train_main_loss"}
    assert all(math.isnan(v) for v in History.from_dict(old).train_main_loss)
    assert len(History.from_dict(old).train_main_loss) == 2


# --- train_one_epoch, validate, should_stop ---------------------------------------------------


def test_train_one_epoch_equals_the_hand_written_loop():
    """What notebook 04 asserts: the plain loop and train_one_epoch, same model, same batches."""
    loader = DataLoader(colour_dataset(12), batch_size=4)  # the same batches, in the same order
    loss_fn = nn.CrossEntropyLoss(ignore_index=255)

    by_hand = new_model()
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.1)
    loss_sum, num_images = 0.0, 0
    for images, masks in loader:
        outputs = by_hand(images)
        loss = loss_fn(outputs, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * images.shape[0]
        num_images += images.shape[0]

    library = new_model()
    mean_loss = train_one_epoch(
        library, loader, loss_fn, torch.optim.SGD(library.parameters(), lr=0.1)
    )
    torch.testing.assert_close(mean_loss, loss_sum / num_images, rtol=0, atol=0)
    for name, value in by_hand.state_dict().items():
        torch.testing.assert_close(library.state_dict()[name], value, rtol=0, atol=0)


def test_train_one_epoch_options_schedule_clip_and_stop():
    model = new_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    seen = []
    loss = train_one_epoch(
        model,
        DataLoader(colour_dataset(12), batch_size=4),
        nn.CrossEntropyLoss(ignore_index=255),
        optimizer,
        lr_schedule=lambda step: 0.01 * (step + 1),
        grad_clip=0.5,
        channels_last=True,
        step=10,
        on_batch_end=lambda step, loss: seen.append(step) or step == 12,
    )
    assert seen == [11, 12]  # steps count on from 10; True after the second batch ends the epoch
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.12)  # set before each batch
    assert math.isfinite(loss)


def test_progressive_resizing_shrinks_the_early_batches_only():
    class SizeLog(nn.Conv2d):
        """The 1x1 colour model, noting the size of every training batch."""

        def forward(self, images):
            if self.training:
                sizes.append(tuple(images.shape[-2:]))
            return super().forward(images)

    sizes: list[tuple[int, int]] = []
    seed_everything(0)
    model = SizeLog(3, NUM_CLASSES, kernel_size=1)
    train = make_loader(colour_dataset(12, size=32), batch_size=4, shuffle=True, seed=0)
    config = replace(CONFIG, num_epochs=4, progressive_scale=0.5, progressive_share=0.5)
    history = fit(model, train, loaders()[1], config)
    assert sizes == [(16, 16)] * 6 + [(32, 32)] * 6  # 12 steps: the first half at half size
    assert all(math.isfinite(loss) for loss in history.train_loss)
    with pytest.raises(ValueError, match="progressive_scale must be in"):
        fit(new_model(), *loaders(), replace(CONFIG, progressive_scale=1.5))


def test_progressive_resizing_under_a_budget_follows_the_clock(monkeypatch):
    clock = [0.0]  # a fake clock: every step takes 10 of the budget's 100 seconds
    monkeypatch.setattr("segtutor.fit_state.time.monotonic", lambda: clock[0])
    sizes: list[int] = []

    class SizeLog(nn.Conv2d):
        def forward(self, images):
            if self.training:
                sizes.append(images.shape[-1])
            return super().forward(images)

    seed_everything(0)
    model = SizeLog(3, NUM_CLASSES, kernel_size=1)
    train = make_loader(colour_dataset(12, size=32), batch_size=4, shuffle=True, seed=0)
    config = replace(CONFIG, num_epochs=1000, time_budget_s=100.0, val_share=None, amp=False,
                     progressive_scale=0.5, progressive_share=0.3)  # fmt: skip
    history = fit(model, train, loaders()[1], config, callbacks=[_BatchClock(clock)])
    assert history.stop_reason == "time_budget" and len(sizes) == 10
    # the first 30% of 100 s, by the clock: 3 steps of 3000 planned, not 0.3 * 3000
    assert sizes == [16] * 3 + [32] * 7


class _BatchClock(Callback):
    """Moves a fake clock 10 s forward after every batch."""

    def __init__(self, clock: list[float]):
        self.clock = clock

    def on_batch_end(self, epoch, step, loss):
        self.clock[0] += 10.0


def test_train_one_epoch_nan_loss_names_the_batch():
    images, masks = colour_dataset(8).tensors
    images[5, 0, 5, 5] = math.nan
    model = new_model()
    with pytest.raises(FloatingPointError, match=r"at batch 2/2 \(step 2, lr 1.00e-01\)"):
        train_one_epoch(
            model,
            DataLoader(TensorDataset(images, masks), batch_size=4),
            nn.CrossEntropyLoss(ignore_index=255),
            torch.optim.SGD(model.parameters(), lr=0.1),
        )


def test_validate_confusion_matrix_and_loss():
    model = new_model()
    _, val = loaders()
    loss_fn = nn.CrossEntropyLoss(ignore_index=255)
    model.train()
    cm, val_loss = validate(model, val, NUM_CLASSES, loss_fn=loss_fn)
    assert model.training  # put back as it was
    images, masks = next(iter(DataLoader(val.dataset, batch_size=len(val.dataset))))
    with torch.no_grad():
        logits = model(images)
    torch.testing.assert_close(val_loss, loss_fn(logits, masks).item(), rtol=1e-6, atol=0)
    assert torch.equal(cm.matrix, evaluate(model, val, NUM_CLASSES).matrix)
    labelled = masks[masks != 255]
    assert torch.equal(cm.matrix.sum(dim=1), torch.bincount(labelled, minlength=NUM_CLASSES))
    assert math.isnan(validate(model, val, NUM_CLASSES)[1])  # no loss_fn: no loss


def test_validate_takes_the_loss_where_the_model_predicts_and_metrics_at_the_masks_size():
    from segtutor.losses import shrink_masks

    model = new_model().eval()
    images, masks = colour_dataset(4, size=16).tensors
    big = masks.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # drawn at 2x the size
    big[:, 0, :] = 255  # a row the shrunk masks never sample: ignored either way
    loader = DataLoader(TensorDataset(images, big), batch_size=2)
    seen: list[tuple[int, ...]] = []

    def loss_fn(logits, target):
        seen.append((*logits.shape[-2:], *target.shape[-2:]))
        return nn.functional.cross_entropy(logits, target, ignore_index=255)

    cm, val_loss = validate(model, loader, NUM_CLASSES, loss_fn=loss_fn)
    assert seen == [(16, 16, 16, 16)] * 2  # the model's size, not the masks' 32x32
    with torch.no_grad():
        logits = model(images)
    expected = nn.functional.cross_entropy(logits, shrink_masks(big, (16, 16)), ignore_index=255)
    torch.testing.assert_close(val_loss, expected.item(), rtol=1e-5, atol=0)
    labelled = big[big != 255]  # the metrics count every labelled pixel of the big masks
    assert torch.equal(cm.matrix.sum(dim=1), torch.bincount(labelled, minlength=NUM_CLASSES))


@pytest.mark.parametrize(
    ("val_miou", "patience", "stop"),
    [
        ([], 2, False),  # nothing to judge yet
        ([0.5, 0.4, 0.3], None, False),  # no patience: never
        ([0.5, 0.6, 0.7], 1, False),  # improving
        ([0.5, 0.7, 0.6], 1, True),  # the best is 1 epoch old
        ([0.5, 0.7, 0.6], 2, False),
        ([0.5, 0.7, 0.6, 0.65], 2, True),
        ([0.7, 0.7, 0.7], 2, True),  # a tie is no improvement: the best is the earliest
        ([0.5, math.nan, math.nan], 2, True),  # NaN never improves
        ([math.nan, math.nan], 2, True),  # nothing measured for `patience` epochs
        ([math.nan], 2, False),
        ([0.5], 0, True),  # patience 0: stop after any epoch
    ],
)
def test_should_stop(val_miou, patience, stop):
    assert should_stop(val_miou, patience) is stop


def test_history_append_records_an_epoch():
    from segtutor.metrics import ConfusionMatrix

    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 0]]))
    history = History()
    history.append(1, 0.9, 0.8, cm, lr=0.01, seconds=2.0)
    assert history.val_iou == [[0.5, 0.5]] and history.val_miou == [0.5]
    assert history.val_pixel_accuracy == [pytest.approx(2 / 3)]
    assert (history.epoch, history.train_loss, history.lr) == ([1], [0.9], [0.01])


# --- transfer learning: a frozen encoder, a slower encoder ---------------------------------------


def small_unet(seed: int = 0) -> nn.Module:
    from segtutor.model import UNet

    seed_everything(seed)
    return UNet(num_classes=NUM_CLASSES, base_width=4, depth=2)


def test_freeze_encoder_epochs_freezes_then_unfreezes():
    model = small_unet()
    encoder = {id(p) for p in model.encoder_parameters()}
    snapshots = [{k: v.clone() for k, v in model.named_parameters()}]

    def snapshot(epoch, history):
        snapshots.append({k: v.clone() for k, v in model.named_parameters()})
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert trainable.isdisjoint(encoder) == (epoch == 1)  # frozen during epoch 1 only

    config = replace(CONFIG, num_epochs=2, freeze_encoder_epochs=1, amp=False)
    fit(model, *loaders(), config, callbacks=[snapshot])
    before, after_1, after_2 = snapshots
    names = {name for name, p in model.named_parameters() if id(p) in encoder}
    assert names and all(name.startswith(("inc.", "downs.")) for name in names)
    for name in before:
        changed_1 = not torch.equal(before[name], after_1[name])
        assert changed_1 == (name not in names), name  # the decoder learned, the encoder not
    assert all(not torch.equal(after_1[name], after_2[name]) for name in names)  # unfrozen
    assert all(p.requires_grad for p in model.parameters())  # fit leaves nothing frozen


def test_a_run_shorter_than_the_freeze_ends_unfrozen():
    model = small_unet()
    fit(model, *loaders(), replace(CONFIG, num_epochs=1, freeze_encoder_epochs=5, amp=False))
    assert all(p.requires_grad for p in model.parameters())


def test_encoder_lr_factor_gives_the_encoder_its_own_scheduled_group():
    from segtutor.config import build_optimizer

    model = small_unet()
    config = replace(CONFIG, encoder_lr_factor=0.1, lr=0.05, scheduler="cosine", amp=False)
    optimizer = build_optimizer(model, config)
    decoder_group, encoder_group = optimizer.param_groups
    assert {id(p) for p in encoder_group["params"]} == {id(p) for p in model.encoder_parameters()}
    assert len(decoder_group["params"]) + len(encoder_group["params"]) == len(
        list(model.parameters())
    )
    assert encoder_group["lr"] == pytest.approx(0.005) and decoder_group["lr"] == 0.05
    train_loader, _ = loaders()
    schedule = lambda step: scheduled_lr(config, 0.5)  # noqa: E731  (half way: lr / 2)
    train_one_epoch(model, train_loader, nn.CrossEntropyLoss(ignore_index=255), optimizer,
                    lr_schedule=schedule)  # fmt: skip
    assert decoder_group["lr"] == pytest.approx(0.025)
    assert encoder_group["lr"] == pytest.approx(0.0025)
    assert len(build_optimizer(model, replace(config, encoder_lr_factor=1.0)).param_groups) == 1


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_optimizers_on_the_cpu_are_fused_and_step_like_unfused_ones(name):
    from segtutor.config import build_optimizer

    config = replace(CONFIG, optimizer=name, lr=0.01, amp=False)
    models = [small_unet(), small_unet()]
    models[1].load_state_dict(models[0].state_dict())
    fused = build_optimizer(models[0], config)
    assert fused.defaults["fused"] is True
    plain_class = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    plain = plain_class(models[1].parameters(), lr=0.01, weight_decay=config.weight_decay)
    images = torch.randn(2, 3, 32, 32)
    for model, optimizer in zip(models, (fused, plain), strict=True):
        for _ in range(3):
            optimizer.zero_grad()
            model(images).square().mean().backward()
            optimizer.step()
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_encoder_lr_factor_and_freeze_resume_exactly(tmp_path):
    config = replace(CONFIG, num_epochs=3, encoder_lr_factor=0.1, freeze_encoder_epochs=1,
                     amp=False, scheduler="cosine")  # fmt: skip
    whole = fit(small_unet(), *loaders(), config)
    path = tmp_path / "last.pt"  # stopped after 2 of 3 epochs by a callback, then resumed
    first = fit(small_unet(), *loaders(), replace(config, last_checkpoint_path=str(path)),
                callbacks=[lambda epoch, history: epoch == 2])  # fmt: skip
    groups = load_checkpoint(path)["optimizer_state"]["param_groups"]
    assert [g.get("lr_factor") for g in groups] == [None, 0.1]
    assert groups[0]["lr"] == first.lr[-1] and groups[1]["lr"] == pytest.approx(0.1 * first.lr[-1])
    resumed = fit(small_unet(seed=5), *loaders(), config, resume_from=path)
    assert resumed.epoch == [1, 2, 3] and same_numbers(resumed, whole)
