"""`python -m segtutor download`: offline, with torchvision's download function replaced.

The replacement writes the miniature copies of tests/test_layouts.py where the real archives
would unpack, so the test sees what a learner would: the dataset recognised in DIR, a second run
that fetches nothing, and a failed download that is one clear message (exit 2, no traceback).
"""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from test_layouts import VOC_MAPPED, make_pets, make_voc, stripes
from torchvision.datasets import oxford_iiit_pet, voc

from segtutor.cli import main
from segtutor.data import load_splits
from segtutor.torchvision_data import DOWNLOADS, is_complete


@pytest.fixture
def fetched(monkeypatch):
    """Replace torchvision's download-and-unpack with one that writes a fake; list its calls."""
    calls = []

    def fake_voc(url, download_root, filename=None, md5=None, **kwargs):
        calls.append(url)
        root = make_voc(Path(download_root))[1]
        (root / "ImageSets" / "Segmentation" / "trainval.txt").write_text("2007_000032\n")

    def fake_pets(url, download_root, md5=None, **kwargs):
        calls.append(url)
        make_pets(Path(download_root).parent)

    monkeypatch.setattr(voc, "download_and_extract_archive", fake_voc)
    monkeypatch.setattr(oxford_iiit_pet, "download_and_extract_archive", fake_pets)
    return calls


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def test_voc_is_downloaded_where_it_says_and_loads(tmp_path, fetched, capsys):
    code, text = run(["download", "voc", str(tmp_path / "data")], capsys)
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    assert code == 0 and [Path(url).name for url in fetched] == ["VOCtrainval_11-May-2012.tar"]
    assert f"the dataset lands in {root}" in text and f"train --data {root}" in text
    train_ds, _ = load_splits(root)
    torch.testing.assert_close(train_ds[0][1], torch.from_numpy(stripes(VOC_MAPPED)))


def test_a_second_run_fetches_nothing(tmp_path, fetched, capsys):
    assert run(["download", "pets", str(tmp_path)], capsys)[0] == 0
    assert len(fetched) == 2  # images.tar.gz and annotations.tar.gz
    code, text = run(["download", "pets", str(tmp_path)], capsys)
    assert code == 0 and len(fetched) == 2
    assert f"already complete in {tmp_path / 'oxford-iiit-pet'}" in text
    assert is_complete("pets", tmp_path)


def test_an_offline_download_is_one_clear_message(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(voc, "download_and_extract_archive", offline)
    code, text = run(["download", "voc", str(tmp_path)], capsys)
    assert code == 2
    assert f"{tmp_path}: downloading Pascal VOC 2012 failed" in text
    assert "name resolution" in text and "run the same command again" in text


@pytest.mark.parametrize("name", ["cityscapes", "camvid", "ade20k"])
def test_what_torchvision_cannot_fetch_is_explained(tmp_path, name, fetched, capsys):
    code, text = run(["download", name, str(tmp_path)], capsys)
    assert code == 2 and fetched == []
    assert DOWNLOADS[name].source in text and str(tmp_path) in text
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_manual_dataset_already_in_place_is_accepted(tmp_path, capsys):
    from test_layouts import make_camvid

    make_camvid(tmp_path)
    code, text = run(["download", "camvid", str(tmp_path)], capsys)
    assert code == 0 and "already complete" in text


def test_download_help_names_every_dataset(capsys):
    with pytest.raises(SystemExit) as info:
        main(["download", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "voc, pets, cityscapes, camvid, ade20k" in out and "DIR" in out
