"""The tutorial baseline of benchmarks/compare.py: its mask fix, its model, its evaluation.

The benchmark's modules import each other as siblings (`python benchmarks/compare.py` puts
benchmarks/ first on `sys.path`); the fixtures do the same for the test process.

The benchmark's claims rest on these: the baseline trains on real labels (not the source's
all-zero masks), runs the same network segtutor runs in the throughput comparison, and scores
predictions exactly as `segtutor.train.evaluate` does. segmentation_models_pytorch is not needed.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from segtutor.data import load_splits
from segtutor.model import UNet as SegtutorUNet
from segtutor.model import build_unet, count_parameters
from segtutor.train import evaluate

ROOT = Path(__file__).resolve().parents[1]


def _import_benchmark(name: str):
    """benchmarks/<name>.py as the scripts import it, without leaving benchmarks/ on the path."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def tutorial():
    return _import_benchmark("tutorial")


@pytest.fixture(scope="module")
def measure():
    return _import_benchmark("measure")


def test_compare_runs_as_a_script_from_the_repository_root():
    result = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--render-only" in result.stdout and "--pipelines" in result.stdout


def test_fixed_masks_keep_their_labels_where_to_tensor_zeroes_them(tutorial):
    train_ds, _ = load_splits(ROOT / "data_samples" / "cells")
    paths = train_ds.image_paths[:4], train_ds.mask_paths[:4]
    fixed = tutorial.TutorialDataset(
        *paths, tutorial.tutorial_image_transform(), tutorial.tutorial_mask_transform()
    )
    masks = torch.stack([fixed[i][1] for i in range(4)])  # (4, 128, 128)
    assert masks.dtype == torch.int64 and masks.shape == (4, 128, 128)
    assert (masks == 1).sum() > 0  # cells are class 1

    # The source's mask transform: ToTensor divides by 255, so every label 1 becomes 0.
    source = transforms.Compose([tutorial.tutorial_mask_transform(), transforms.ToTensor()])
    for path in paths[1]:
        assert (source(Image.open(path).convert("L")).squeeze(0).long() == 0).all()


def test_tutorial_unet_is_segtutors_bilinear_unet(tutorial):
    theirs = tutorial.UNet(n_channels=3, n_classes=4)
    ours = SegtutorUNet(3, 4, base_width=64, depth=4, bilinear=True)
    assert count_parameters(theirs) == count_parameters(ours)
    shapes = sorted(tuple(p.shape) for p in theirs.parameters())
    assert shapes == sorted(tuple(p.shape) for p in ours.parameters())


def test_evaluation_matches_segtutor_evaluate(tutorial, measure):
    _, val_ds = load_splits(ROOT / "data_samples" / "scenes")
    # predicted at 64x64, scored against the 128x128 masks: exercises the resize back
    val_set = tutorial.TutorialDataset(
        val_ds.image_paths[:6], val_ds.mask_paths[:6], tutorial.tutorial_image_transform(64)
    )
    torch.manual_seed(0)
    model = build_unet("tiny", num_classes=4)
    with torch.no_grad():  # a random model predicts one class; nudge it to predict several
        model.outc.conv.bias.copy_(torch.tensor([0.0, 0.05, -0.05, 0.02]))
    ours = measure.evaluate_tutorial(model, val_set, num_classes=4, batch_size=3)
    reference = evaluate(model, DataLoader(val_set, batch_size=2), num_classes=4)
    torch.testing.assert_close(ours.matrix, reference.matrix)
    labelled = sum(int((val_set[i][1] != 255).sum()) for i in range(6))
    assert int(ours.matrix.sum()) == labelled  # every labelled pixel at the masks' 128x128
    assert ours.miou() == reference.miou()


# --- issue 12: real datasets, library peers, the lr pick, curves, the targets ---------------


@pytest.fixture(scope="module")
def peers():
    return _import_benchmark("peers")


@pytest.fixture(scope="module")
def plan():
    return _import_benchmark("plan")


@pytest.fixture(scope="module")
def verdicts():
    return _import_benchmark("verdicts")


@pytest.fixture(scope="module")
def report():
    return _import_benchmark("report")


@pytest.fixture(scope="module")
def compare():
    return _import_benchmark("compare")


def make_tiny_dataset(root: Path, n: int = 10, size: tuple[int, int] = (20, 30)) -> Path:
    """`n` random images (H, W) = `size` with masks holding 0, 1, 2 and some 255, in one pool."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        mask = np.zeros(size, dtype=np.uint8)
        mask[:, size[1] // 3 :] = 1
        mask[size[0] // 2 :, 2 * size[1] // 3 :] = 2
        mask[0, :] = 255  # an ignored row
        Image.fromarray(image).save(root / "images" / f"s{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"s{i:02d}.png")
    return root


def test_lr_sweep_picks_the_best_rate_and_keeps_every_run(plan):
    scores = {3e-4: 0.41, 1e-3: 0.57, 3e-3: None}  # the largest rate failed
    picked, runs = plan.sweep_lr(lambda lr: {"lr": lr, "miou": scores[lr]}, [3e-4, 1e-3, 3e-3])
    assert picked == 1e-3
    assert [r["lr"] for r in runs] == [3e-4, 1e-3, 3e-3]
    assert [r["picked"] for r in runs] == [False, True, False]
    assert plan.sweep_lr(lambda lr: {"lr": lr, "miou": None}, [1e-3])[0] is None
    assert plan.pick_budget([60, 120, 300]) == 120
    assert plan.pick_budget([60, 300]) == 60
    assert plan.pick_budget([60, 300], 300) == 300


def test_benchmark_sweeps_once_then_runs_the_picked_rate(compare, monkeypatch, tmp_path):
    mine = make_tiny_dataset(tmp_path / "mine")
    best = {3e-4: 0.2, 1e-3: 0.3, 3e-3: 0.5}

    def fake_run_child(spec):
        miou = best[spec["lr"]] if spec["pipeline"] == "smp" else 0.9
        fake = {"miou": miou, "images_per_s": 1.0, "epochs": 1, "peak_rss_mib": 1.0, "wall_s": 1.0}
        return {**spec, **fake}

    monkeypatch.setattr(compare, "run_child", fake_run_child)
    monkeypatch.setattr(compare, "machine_facts", lambda root: {})
    args = compare.build_parser().parse_args(
        ["--datasets", "scenes", "--data", f"mine={mine}", "--budgets", "60,120,300"]
        + ["--pipelines", "segtutor,smp", "--no-throughput"]
    )
    results = compare.run_benchmark(args, tmp_path / "compare.json")
    runs = results["runs"]

    def rows(dataset, pipeline):
        return [r for r in runs if r["dataset"] == dataset and r["pipeline"] == pipeline]

    sweep = [r for r in rows("mine", "smp") if r["lr_sweep"]]
    assert [(r["budget_s"], r["lr"], r["picked"]) for r in sweep] == [
        (120, 3e-4, False),
        (120, 1e-3, False),
        (120, 3e-3, True),
    ]
    assert [(r["budget_s"], r["lr"]) for r in rows("mine", "smp") if not r["lr_sweep"]] == [
        (60, 3e-3),
        (300, 3e-3),
    ]
    assert results["lr_picks"]["mine"]["smp"]["lr"] == 3e-3
    assert results["lr_picks"]["mine"]["smp"]["miou_by_lr"] == {
        "0.0003": 0.2,
        "0.001": 0.3,
        "0.003": 0.5,
    }
    assert [r["budget_s"] for r in rows("mine", "segtutor")] == [60, 75, 120, 300]  # real: +75
    assert [r["budget_s"] for r in rows("scenes", "segtutor")] == [60, 120, 300]
    assert all(r["real"] for r in rows("mine", "smp")) and not rows("scenes", "smp")[0]["real"]
    assert results["settings"]["real_datasets"] == ["mine"]
    assert json.loads((tmp_path / "compare.json").read_text())["runs"] == json.loads(
        json.dumps(runs)
    )


def test_named_data_needs_a_new_name_and_a_path(plan):
    assert plan.parse_named_data(["voc=/d/VOC", "x=a=b"], ["scenes"]) == {
        "voc": "/d/VOC",
        "x": "a=b",
    }
    for bad in (["voc"], ["=/d"], ["scenes=/d"], ["a=/d", "a=/e"]):
        with pytest.raises(SystemExit):
            plan.parse_named_data(bad, ["scenes"])


def test_time_to_reach_is_the_smallest_budget_that_reaches(verdicts):
    points = [(75, 0.50), (120, 0.62), (300, 0.70)]
    assert verdicts.time_to_reach(points, 0.50) == 75
    assert verdicts.time_to_reach(points, 0.55) == 120
    assert verdicts.time_to_reach(points, 0.71) is None
    assert verdicts.reach_text(points, 0.55) == "<= 120 s"
    assert verdicts.reach_text(points, 0.71) == "not within 300 s"
    assert verdicts.reach_text([], 0.5) == "n/a"


def _hand_made_results() -> dict:
    def run(dataset, pipeline, budget, miou, **extra):
        return {"dataset": dataset, "pipeline": pipeline, "budget_s": budget, "miou": miou, **extra}

    runs = [
        # ccp9: met at 120 (against lraspp, the best peer there), missed at 300, reach missed
        run("ccp9", "smp", 120, 0.99, lr=3e-4, lr_sweep=True, picked=False),  # never counts
        run("ccp9", "smp", 120, 0.35, lr=1e-3, lr_sweep=True, picked=True),
        run("ccp9", "lraspp", 120, 0.38, lr=1e-3, lr_sweep=True, picked=True),
        run("ccp9", "segtutor", 75, 0.36),
        run("ccp9", "segtutor", 120, 0.42),
        run("ccp9", "segtutor", 300, 0.50),
        run("ccp9", "smp", 300, 0.48, lr=1e-3, lr_sweep=False),
        # nuclei: every target met
        run("nuclei", "segtutor", 75, 0.85),
        run("nuclei", "segtutor", 120, 0.88),
        run("nuclei", "segtutor", 300, 0.90),
        run("nuclei", "smp", 120, 0.80, lr=3e-3, lr_sweep=True, picked=True),
        run("nuclei", "smp", 300, 0.84, lr=3e-3, lr_sweep=False),
        run("nuclei", "tutorial", 300, 0.86),
    ]
    return {"settings": {"real_datasets": ["ccp9", "nuclei"]}, "runs": runs}


def test_targets_table_says_met_and_missed_from_the_numbers(verdicts):
    rows = {(r["dataset"], r["target"]): r for r in verdicts.target_rows(_hand_made_results())}
    margin = "segtutor >= best peer + 0.03 at {} s"
    reach = "segtutor reaches smp's 300 s mIoU within 75 s"
    assert rows["ccp9", margin.format(120)]["verdict"] == "**met**"
    assert "lraspp 0.380: margin +0.040" in rows["ccp9", margin.format(120)]["measured"]
    assert rows["ccp9", margin.format(300)]["verdict"] == "**missed**"
    assert "margin +0.020" in rows["ccp9", margin.format(300)]["measured"]
    assert rows["ccp9", reach]["verdict"] == "**missed**"
    assert "<= 300 s" in rows["ccp9", reach]["measured"]
    assert rows["nuclei", margin.format(120)]["verdict"] == "**met**"
    assert "tutorial 0.860: margin +0.040" in rows["nuclei", margin.format(300)]["measured"]
    assert rows["nuclei", reach]["verdict"] == "**met**"
    assert "<= 75 s" in rows["nuclei", reach]["measured"]
    # a dataset whose runs are missing is "not measured", never met
    missing = {"settings": {"real_datasets": ["ccp9"]}, "runs": []}
    assert {r["verdict"] for r in verdicts.target_rows(missing)} == {"not measured"}


def test_report_renders_the_targets_table_and_the_plot(report, tmp_path):
    results = _hand_made_results()
    results["machine"] = dict.fromkeys(
        ["date", "cpu", "logical_cpus", "torch_threads", "cpu_capability", "torch"]
        + ["torchvision", "segmentation_models_pytorch", "python", "segtutor_commit"]
        + ["load_average_at_start"],
        "x",
    )
    for r in results["runs"]:
        r.update(miou_last_epoch=r["miou"], images_per_s=1.0, train_images=8, epochs=1)
        r.update(train_s=r["budget_s"], peak_rss_mib=100.0)
        if r["pipeline"] == "smp":
            r["curve"] = [(30.0, r["miou"] / 2), (r["budget_s"], r["miou"])]
    results["lr_picks"] = {"ccp9": {"smp": {"lr": 1e-3, "budget_s": 120, "miou_by_lr": {}}}}
    doc, plot = tmp_path / "bench.md", tmp_path / "images" / "bench.png"
    report.render(results, doc, plot)
    text = doc.read_text()
    assert plot.stat().st_size > 0
    table = [line for line in text.splitlines() if line.startswith("| ccp9 | segtutor")]
    assert [line.rsplit("|", 2)[1].strip() for line in table] == ["**met**", "**missed**"] + [
        "**missed**"
    ]
    assert "| ccp9 | smp | 0.480 | <= 300 s |" in text  # time to reach smp's 300 s mIoU
    assert "| nuclei | smp | 0.840 | <= 75 s |" in text
    assert "0.990" not in text.split("The lr sweep's runs")[0]  # the unpicked run is not a row


def test_peer_loader_reads_load_splits_files_and_resizes_masks_nearest(peers, tmp_path):
    root = make_tiny_dataset(tmp_path / "d")
    train_ds, val_ds = load_splits(root)
    data = peers.peer_data(root, size=16)
    assert data.train_image_paths == list(train_ds.image_paths)
    assert data.val_image_paths == list(val_ds.image_paths)
    assert data.train_images.shape == (len(train_ds), 3, 16, 16)
    assert data.train_images.dtype == data.train_masks.dtype == torch.uint8
    assert set(data.train_masks.unique().tolist()) <= {0, 1, 2, 255}  # no new labels
    assert {0, 1, 2, 255} <= set(data.train_masks.unique().tolist())
    image, mask = data.val_set[0]
    assert image.shape == (3, 16, 16) and mask.shape == (20, 30) and mask.dtype == torch.int64
    torch.testing.assert_close(mask, val_ds.read_sample(0)[1].as_subclass(torch.Tensor))

    # batches: shuffled, images and masks flipped together, a short last batch dropped
    generator = torch.Generator().manual_seed(0)
    batches = list(peers.peer_batches(data.train_images, data.train_masks, 3, generator))
    assert [len(b[0]) for b in batches] == [3] * (len(train_ds) // 3)
    originals = {bytes(m.flatten().tolist()) for m in data.train_masks}
    flipped = {bytes(m.flip(-1).flatten().tolist()) for m in data.train_masks}
    for _, masks in batches:
        for m in masks:
            assert bytes(m.flatten().tolist()) in originals | flipped


def test_torchvision_peers_build_and_train_one_step_offline(peers, tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    images, masks = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    for name in ("lraspp", "deeplabv3"):
        torch.manual_seed(0)
        model = peers.build_peer(name, num_classes=3)
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and {m.momentum for m in norms} == {0.1}, name  # torchvision's 0.01 undone
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        before = [p.detach().clone() for p in model.parameters()]
        logits = model(images)
        assert logits.shape == (2, 3, 32, 32), name
        loss = torch.nn.functional.cross_entropy(logits, masks)
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert list(home.iterdir()) == []  # nothing downloaded
    assert not (tmp_path / "hf_home").exists()


def test_fast_peer_run_records_a_curve_with_the_clock_paused(peers, tmp_path, monkeypatch):
    root = make_tiny_dataset(tmp_path / "d")
    monkeypatch.setattr(peers, "build_peer", lambda name, num_classes: nn.Conv2d(3, num_classes, 1))
    out = peers.run_fast_peer("smp", str(root), 1.0, lr=1e-2, device="cpu", curve_every=0.25)
    times = [t for t, _ in out["curve"]]
    assert len(times) >= 3 and times == sorted(times)
    assert out["curve"][-1] == (out["train_s"], out["miou"])
    assert 1.0 <= out["train_s"] < 1.0 + 0.5  # evaluation pauses are not training time
    assert out["curve_eval_s"] > 0 and out["lr"] == 1e-2 and out["input_size"] == 128
    assert set(out["per_class_iou"]) == {"class_0", "class_1", "class_2"}


@pytest.mark.slow  # trains one epoch and exports to TorchScript and ONNX
def test_predict_speed_quick_runs_on_a_tiny_fake(tmp_path):
    predict_speed = _import_benchmark("predict_speed")
    results = predict_speed.main(["--quick", "--out", str(tmp_path / "speed.json")])
    fake = results["datasets"]["fake"]
    assert set(fake["images_per_second"]) == {"eager", "torchscript", "onnxruntime"}
    assert all(speed > 0 for speed in fake["images_per_second"].values())
    assert set(fake["variants"]) == {"whole", "window", "tta", "window+tta"}
    for row in fake["variants"].values():
        assert 0 <= row["miou"] <= 1 and row["s_per_image"] > 0
    assert fake["variants"]["window"]["window"] == 32  # the training crop of --quick
    assert json.loads((tmp_path / "speed.json").read_text())["datasets"]["fake"] == json.loads(
        json.dumps(fake)
    )


@pytest.fixture
def merge_results():
    return _import_benchmark("merge_results")


def _part(date, runs, commit="abc"):
    return {
        "machine": {"date": date, "segtutor_commit": commit, "load_average_at_start": [0, 0, 0]},
        "settings": {"datasets": {"d": "data/d"}, "real_datasets": ["d"]},
        "runs": runs,
    }


def _run(pipeline, budget, miou, lr=None, **extra):
    return {
        "dataset": "d",
        "pipeline": pipeline,
        "budget_s": budget,
        "lr": lr,
        "miou": miou,
    } | extra


def test_merge_repicks_the_rate_over_every_part_and_supersedes_old_rate_runs(
    merge_results, verdicts
):
    old = _part(
        "2026-01-01 10:00 UTC",
        [
            _run("lraspp", 120.0, 0.50, lr=3e-3, lr_sweep=True, picked=True),
            _run("lraspp", 300.0, 0.55, lr=3e-3, lr_sweep=False),
            _run("segtutor", 120.0, 0.70),
        ],
    )
    new = _part(
        "2026-01-02 10:00 UTC",
        [
            _run("lraspp", 120.0, 0.60, lr=1e-2, lr_sweep=True, picked=True),
            _run("lraspp", 300.0, 0.65, lr=1e-2, lr_sweep=True, picked=True),
            _run("segtutor", 300.0, 0.80),
        ],
    )
    merged = merge_results.merge([new, old])  # any order: sorted by date
    assert merged["lr_picks"]["d"]["lraspp"]["lr"] == 1e-2
    assert merged["lr_picks"]["d"]["lraspp"]["miou_by_lr"] == {"0.003": 0.50, "0.01": 0.60}
    judged = {(r["pipeline"], r["budget_s"]): r for r in verdicts.main_runs(merged["runs"])}
    assert judged[("lraspp", 120.0)]["lr"] == 1e-2
    assert judged[("lraspp", 300.0)]["miou"] == 0.65  # the 3e-3 run at 300 s is superseded
    seg = {r["budget_s"]: r["measured"] for r in merged["runs"] if r["pipeline"] == "segtutor"}
    assert seg == {120.0: "2026-01-01 10:00 UTC", 300.0: "2026-01-02 10:00 UTC"}
    assert len(merged["notes"]) == 2


def test_merging_into_a_merged_file_keeps_each_run_s_own_date(merge_results):
    first = merge_results.merge(
        [
            _part("2026-01-01 10:00 UTC", [_run("smp", 120.0, 0.5, lr=3e-3)]),
            _part("2026-01-02 10:00 UTC", [_run("segtutor", 120.0, 0.7)]),
        ]
    )  # dated by its newest part, 01-02
    again = merge_results.merge(
        [first, _part("2026-01-03 10:00 UTC", [_run("segtutor", 300.0, 0.8)])]
    )
    dates = {r["pipeline"] + str(r["budget_s"]): r["measured"] for r in again["runs"]}
    assert dates == {
        "smp120.0": "2026-01-01 10:00 UTC",
        "segtutor120.0": "2026-01-02 10:00 UTC",
        "segtutor300.0": "2026-01-03 10:00 UTC",
    }


def test_schedule_shape_reproduces_one_cycle_and_reshapes_it():
    shape = _import_benchmark("schedule_shape")
    from segtutor.config import TrainConfig, scheduled_lr

    config = TrainConfig(lr=1e-2)
    default = shape.reshaped(0.3, "cosine")
    for p in (0.0, 0.1, 0.3, 0.5, 0.9, 1.0):
        assert default(config, p) == pytest.approx(scheduled_lr(config, p))
    short = shape.reshaped(0.1, "linear")
    assert short(config, 0.1) == pytest.approx(1e-2)  # the peak, after a tenth of the run
    assert short(config, 0.55) == pytest.approx((1e-2 + 1e-2 / 25e4) / 2)  # halfway down
    assert short(config, 1.0) == pytest.approx(1e-2 / 25e4)


def test_seeds_table_has_each_seed_the_mean_and_the_spread(tmp_path):
    seeds = _import_benchmark("seeds")
    runs = [
        {"pipeline": "segtutor", "seed": 0, "miou": 0.40},
        {"pipeline": "lraspp", "seed": 0, "miou": 0.35, "lr": 0.003},
        {"pipeline": "segtutor", "seed": 1, "miou": 0.36},
        {"pipeline": "lraspp", "seed": 1, "miou": None, "lr": 0.003},  # a failed run
    ]
    header, rule, mine, theirs = seeds.summary(runs)
    assert header == "| pipeline | lr | seed 0 | seed 1 | mean | min-max |"
    assert mine == "| segtutor | recipe | 0.400 | 0.360 | **0.380** | 0.360-0.400 |"
    assert theirs == "| lraspp | 0.003 | 0.350 | failed | **0.350** | 0.350-0.350 |"
    with pytest.raises(SystemExit, match="train/ \\+ val/"):
        seeds.main([str(tmp_path), "60"])  # one folder: the seed would draw the split


def test_time_to_miou_reads_train_s_epoch_lines_and_finds_the_first_at_the_target(capsys):
    from segtutor.metrics import ConfusionMatrix
    from segtutor.train import History, TrainConfig, _print_epoch

    time_to_miou = _import_benchmark("time_to_miou")
    history = History()
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]))
    history.append(3, 0.5, 0.4, cm, 1e-3, 1.2, train_main_loss=0.3)
    _print_epoch(history, TrainConfig(num_epochs=20, num_classes=2), improved=True)
    line = capsys.readouterr().out.strip()
    match = time_to_miou.EPOCH_LINE.match(line)
    assert match and int(match.group(1)) == 3
    assert float(match.group(2)) == pytest.approx(history.val_miou[-1], abs=1e-4)
    run = {"epochs": [(1, 0.5, 3.0), (2, 0.91, 5.0), (3, 0.89, 7.0), (4, 0.95, 9.0)]}
    assert time_to_miou.time_to(run, 0.90) == (2, 5.0)
    assert time_to_miou.time_to(run, 0.96) is None


def test_at_budget_heldout_set_is_new_images_of_the_same_kind(tmp_path):
    at_budget = _import_benchmark("at_budget")
    data = Path(__file__).resolve().parents[1] / "data_samples" / "scenes"
    heldout = at_budget.heldout_set(data, tmp_path / "heldout", images=3, seed=7)
    masks = sorted((heldout / "val" / "masks").iterdir())
    assert len(masks) == 3 and not (heldout / "train").exists()
    assert json.loads((heldout / "dataset.json").read_text())["name"] == "scenes"
    for mask in masks:  # the same file names as the bundled set's, other images
        bundled = data / "val" / "masks" / mask.name
        if bundled.exists():
            assert mask.read_bytes() != bundled.read_bytes()
    with Image.open(masks[0]) as image:
        assert image.size == (128, 128)
    (tmp_path / "mine").mkdir()
    with pytest.raises(SystemExit, match="give --heldout FOLDER"):
        at_budget.heldout_set(tmp_path / "mine", tmp_path / "other", images=3, seed=7)


def test_at_budget_table_pairs_each_seed_and_gives_the_means():
    at_budget = _import_benchmark("at_budget")
    runs = [
        {"checkout": "baseline", "seed": 0, "epochs": 100, "val": 0.96, "heldout": 0.94},
        {"checkout": "this", "seed": 0, "epochs": 200, "val": 0.95, "heldout": 0.95},
        {"checkout": "baseline", "seed": 1, "epochs": 110, "val": 0.95, "heldout": 0.93},
        {"checkout": "this", "seed": 1, "epochs": 220, "val": 0.96, "heldout": 0.96},
    ]
    lines = at_budget.table(runs)
    assert lines[2] == "| 0 | 100 | 0.9600 | 0.9400 | 200 | 0.9500 | 0.9500 | +0.0100 |"
    assert lines[3] == "| 1 | 110 | 0.9500 | 0.9300 | 220 | 0.9600 | 0.9600 | +0.0300 |"
    assert lines[4] == "| mean | 105 | 0.9550 | 0.9350 | 210 | 0.9550 | 0.9550 | +0.0200 |"


def test_budget_epochs_scores_the_kept_weights_on_the_heldout_folder(tmp_path, capsys):
    from segtutor.synth import write_dataset

    budget_epochs = _import_benchmark("budget_epochs")
    data = tmp_path / "scenes"
    write_dataset(data, "scenes", n_train=8, n_val=3, size=(48, 48), seed=0)
    choices = '{"preset": "tiny", "input_size": 32, "batch_augment": false}'
    threads = torch.get_num_threads()
    try:
        budget_epochs.main([str(data), "2", "0", choices, "--heldout", str(data)])
    finally:
        torch.set_num_threads(threads)  # the script trains on one thread
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["epochs"] == 2 and len(line["last_six"]) == 2
    assert line["choices"] == {"preset": "tiny", "input_size": 32, "batch_augment": False}
    assert line["best"] >= line["last"]  # the best epoch is kept
    # the held-out folder here is the validation set itself: the kept weights score there
    # exactly what fit recorded for them
    assert line["heldout"] == line["best"]
