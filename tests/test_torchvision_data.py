"""`segtutor.torchvision_data`: torchvision's segmentation datasets read to segtutor's contract.

The fakes are the miniature copies of tests/test_layouts.py, laid out where torchvision looks
(`VOCdevkit/VOC2012`, `leftImg8bit` + `gtFine`, `oxford-iiit-pet`), built with `download=False`.
The decoded masks are compared with the values computed by hand there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_layouts import (
    CITY_MAPPED,
    PETS_MAPPED,
    VOC_MAPPED,
    H,
    W,
    make_cityscapes,
    make_pets,
    make_voc,
    stripes,
)
from torchvision.datasets import Cityscapes, OxfordIIITPet, VOCSegmentation

from segtutor.data import make_loader
from segtutor.errors import DataError
from segtutor.formats import VOC_CLASS_NAMES
from segtutor.torchvision_data import from_torchvision, torchvision_files
from segtutor.transforms import eval_transforms


def voc(tmp_path, split="train"):
    make_voc(tmp_path)
    return VOCSegmentation(tmp_path, year="2012", image_set=split, download=False)


def test_voc_keeps_its_border_as_ignore_and_its_21_names(tmp_path):
    ds = from_torchvision(voc(tmp_path))
    assert ds.stems == ["2007_000032", "2007_000039"] and ds.layout.name == "voc"
    assert ds.class_names == VOC_CLASS_NAMES and ds.num_classes == 21
    image, mask = ds[1]
    assert image.shape == (3, H, W) and image.dtype == torch.float32
    assert mask.dtype == torch.int64
    torch.testing.assert_close(mask, torch.from_numpy(stripes(VOC_MAPPED)))  # 0, 15, 255, 7


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    _, root, _ = make_cityscapes(tmp_path)
    tv = Cityscapes(root, split="train", mode="fine", target_type="semantic")
    ds = from_torchvision(tv, cache=True)
    assert ds.class_names[13] == "car" and ds.num_classes == 19
    for i in range(len(ds)):  # 0 -> 255, 7 -> 0, 26 -> 13, 33 -> 18, 4 -> 255, 11 -> 2
        torch.testing.assert_close(ds[i][1], torch.from_numpy(stripes(CITY_MAPPED)))
    assert int(np.asarray(tv[0][1])[0, W // 6 + 1]) == 7  # what torchvision itself gives


def test_cityscapes_with_several_targets_uses_the_semantic_one(tmp_path):
    _, root, _ = make_cityscapes(tmp_path)
    for mask in root.rglob("*_labelIds.png"):  # the colour rendering beside each
        Image.new("RGB", (W, H), (128, 64, 128)).save(str(mask).replace("_labelIds", "_color"))
    tv = Cityscapes(root, split="val", target_type=["color", "semantic"])
    images, masks = torchvision_files(tv)
    assert [m.name for m in masks] == ["frankfurt_000000_000294_gtFine_labelIds.png"]
    torch.testing.assert_close(from_torchvision(tv)[0][1], torch.from_numpy(stripes(CITY_MAPPED)))


def test_pet_trimaps_become_background_pet_and_ignore(tmp_path):
    make_pets(tmp_path)
    tv = OxfordIIITPet(tmp_path, split="trainval", target_types="segmentation")
    ds = from_torchvision(tv, transform=eval_transforms())
    assert ds.stems == ["Abyssinian_1", "beagle_10"] and ds.class_names == ["background", "pet"]
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, H, W)  # normalised by the transform
    torch.testing.assert_close(mask, torch.from_numpy(stripes(PETS_MAPPED)))  # 0, 1, 255, 1
    images, masks = next(iter(make_loader(ds, batch_size=2)))
    assert images.shape == (2, 3, H, W) and masks.shape == (2, H, W)
    assert set(masks.unique().tolist()) == {0, 1, 255}
    assert ds.pixel_counts.tolist() == [2 * H * W // 4, 2 * 2 * H * W // 4]


def test_a_value_the_layout_never_stores_is_named(tmp_path):
    make_pets(tmp_path)
    trimap = tmp_path / "oxford-iiit-pet" / "annotations" / "trimaps" / "Bengal_3.png"
    Image.fromarray(stripes([0, 1, 2, 1]).astype(np.uint8)).save(trimap)
    tv = OxfordIIITPet(tmp_path, split="test", target_types="segmentation")
    with pytest.raises(DataError) as info:
        from_torchvision(tv)
    (problem,) = info.value.problems
    assert problem.path == trimap and "values this dataset does not use: 0" in problem.message


def test_a_missing_mask_is_named(tmp_path):
    tv = voc(tmp_path)
    tv_mask = tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000039.png"
    tv_mask.unlink()
    with pytest.raises(DataError) as info:
        from_torchvision(tv)
    assert [p.path for p in info.value.problems] == [tv_mask]


def test_what_cannot_be_wrapped_says_what_to_do(tmp_path):
    _, root, _ = make_cityscapes(tmp_path)
    with pytest.raises(ValueError, match='target_type="semantic"'):
        from_torchvision(Cityscapes(root, target_type="color"))
    make_pets(tmp_path)
    with pytest.raises(ValueError, match='target_types="segmentation"'):
        from_torchvision(OxfordIIITPet(tmp_path, target_types="category"))
    make_voc(tmp_path / "v")
    with pytest.raises(ValueError, match="without transform"):
        from_torchvision(VOCSegmentation(tmp_path / "v", transform=lambda x: x))
    with pytest.raises(ValueError, match="does not know torchvision's list"):
        from_torchvision([1, 2])
    with pytest.raises(ValueError, match="unknown layout 'coco'"):
        from_torchvision(VOCSegmentation(tmp_path / "v"), "coco")
