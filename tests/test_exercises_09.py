"""Tests for segtutor.exercises.ex09: the capstone's answers match the bundled data, the checks
explain typical mistakes, and `self_check` grades a run folder it is given."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from segtutor.checkpoint import save_checkpoint
from segtutor.checks import scan_splits
from segtutor.exercises import ex09 as ex

CELLS = Path(__file__).resolve().parents[1] / "data_samples" / "cells"


def test_q1_answers_are_what_check_data_finds_in_the_bundled_cells():
    reports = scan_splits(CELLS)
    counts = reports["train"].pixel_counts()
    found = {
        "train pairs": len(reports["train"].stems),
        "val pairs": len(reports["val"].stems),
        "classes": reports["train"].num_classes,
        "rarest": reports["train"].class_names[int(np.argmin(counts))],
        "cell share": round(100 * counts[1] / counts.sum(), 1),
        "exit code": 0 if all(r.ok for r in reports.values()) else 2,
    }
    assert found == ex.q1.answers
    assert ex.q1.check(lambda: found, show=False)


def test_q1_a_wrong_reading_is_explained():
    result = ex.q1.check(lambda: ex.q1.answers | {"rarest": "background"}, show=False)
    assert not result and "1 of 6" in result.message and "a sixth" in result.message


def best_epoch(history):
    pairs = zip(history["epoch"], history["val_miou"], strict=True)
    scored = [(m, e) for e, m in pairs if m is not None]
    best_miou = max(m for m, _ in scored)
    return next(e for m, e in scored if m == best_miou), best_miou


def test_q2_solution_and_reference_values():
    assert ex.q2.check(best_epoch, show=False)
    history = {"epoch": [3, 4, 5, 6], "val_miou": [None, 0.6, 0.7, 0.7]}
    assert ex.q2.reference(history) == (5, 0.7)  # the number stored, the first of equals


def test_q2_typical_mistakes():
    def by_position(history):
        epoch, miou = best_epoch(history)
        return history["epoch"].index(epoch), miou

    result = ex.q2.check(by_position, show=False)
    assert not result and "position in the list" in result.message
    result = ex.q2.check(lambda h: (h["epoch"][-1], h["val_miou"][-1]), show=False)
    assert not result and "last epoch" in result.message


def test_q3_decision():
    answers = {"a": "train longer", "b": "--binary-255", "c": "fix the masks", "d": "more data"}
    assert ex.q3.check(lambda: answers, show=False)
    result = ex.q3.check(lambda: answers | {"c": "train longer"}, show=False)
    assert not result and "annotation error" in result.message


def _run_folder(tmp_path, miou, mask_values=(0, 1)):
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "best.pt", model_state={}, class_names=["background", "cell"])
    (run / "metrics.json").write_text(json.dumps({"miou": miou}))
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    mask = np.array([list(mask_values)] * 2, dtype=np.uint8)
    Image.fromarray(mask).save(predictions / "a.png")
    Image.fromarray(mask).save(predictions / "a_overlay.png")  # not a mask: not read
    (predictions / "areas.csv").write_text("image,background,cell\na.png,2,2\n")
    return run, predictions


def test_self_check_passes_a_good_run(tmp_path):
    run, predictions = _run_folder(tmp_path, miou=0.8)
    assert ex.self_check(run, 0.75, predictions=predictions, show=False)


def test_self_check_names_each_problem(tmp_path):
    run, predictions = _run_folder(tmp_path, miou=0.5, mask_values=(0, 7))
    result = ex.self_check(run, 0.75, predictions=predictions, show=False)
    assert not result and "val mIoU 0.500 is below 0.75" in result.message
    assert "a.png holds 7" in result.message and "a_overlay" not in result.message
    (run / "best.pt").write_bytes(b"not a checkpoint")
    result = ex.self_check(run, 0.75, show=False)
    assert not result and "run/best.pt does not load" in result.message
