"""Tests for segtutor.exercises.ex01: the solutions pass, typical mistakes fail with a useful reason."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from segtutor.exercises import ex01 as ex

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _verdict(question, answer):
    result = question.check(answer, show=False)
    return result.status, result.message


def test_every_question_has_hints_and_a_solution():
    for q in (ex.q1, ex.q2, ex.q3, ex.q4):
        assert q.hints and q.solution_code.strip()


def test_solution_code_passes():
    # The shown solution, run as written, is accepted: solution() never shows a wrong answer.
    namespace = {"np": np, "torch": torch, "F": F, "Path": Path}
    for q, name in ((ex.q1, "mask_to_tensor"), (ex.q2, "pair_by_stem"),
                    (ex.q3, "class_pixel_counts"), (ex.q4, "resize_mask")):  # fmt: skip
        exec(q.solution_code, namespace)
        assert q.check(namespace[name], show=False), name


# ---- q1: mask_to_tensor ------------------------------------------------------------------------


def test_q1_right():
    assert ex.q1.check(lambda m: torch.from_numpy(np.array(m)).long(), show=False)
    assert ex.q1.check(lambda m: torch.as_tensor(np.array(m), dtype=torch.int64), show=False)
    assert ex.q1.check(lambda m: T.PILToTensor()(m).squeeze(0).long(), show=False)


def test_q1_to_tensor_then_long_is_explained():
    status, message = _verdict(ex.q1, lambda m: T.ToTensor()(m).squeeze(0).long())
    assert status == "incorrect"
    assert "division by 255" in message and "ToTensor" in message


def test_q1_to_tensor_float_with_channel_axis():
    status, message = _verdict(ex.q1, lambda m: T.ToTensor()(m))
    assert status == "incorrect"
    assert "channel axis" in message and "divided by 255" in message


def test_q1_convert_l_on_a_palette_mask():
    status, message = _verdict(ex.q1, lambda m: torch.from_numpy(np.array(m.convert("L"))).long())
    assert status == "incorrect"
    assert "Case 2 of 3" in message and "palette" in message and "brightness" in message


def test_q1_uint8_is_refused_with_the_fix():
    status, message = _verdict(ex.q1, lambda m: torch.from_numpy(np.array(m)))
    assert status == "incorrect" and "torch.uint8" in message and ".long()" in message


def test_q1_numpy_and_none():
    status, message = _verdict(ex.q1, lambda m: np.array(m))
    assert status == "incorrect" and "torch.from_numpy" in message

    def forgot_return(pil_mask):
        torch.from_numpy(np.array(pil_mask)).long()

    status, message = _verdict(ex.q1, forgot_return)
    assert status == "incorrect" and "return" in message


def test_q1_placeholder_is_not_attempted():
    def mask_to_tensor(pil_mask):
        raise NotImplementedError("your code here")

    assert _verdict(ex.q1, mask_to_tensor)[0] == "not_attempted"


# ---- q2: pair_by_stem --------------------------------------------------------------------------


def _by_stem(names, *, skip_hidden=True, lower=True, stem=lambda n: Path(n).stem):
    out = {}
    for n in names:
        suffix = Path(n).suffix.lower() if lower else Path(n).suffix
        if (skip_hidden and n.startswith(".")) or suffix not in IMAGE_EXTENSIONS:
            continue
        out[stem(n)] = n
    return out


def _pairer(**options):
    def pair_by_stem(image_names, mask_names):
        images, masks = _by_stem(image_names, **options), _by_stem(mask_names, **options)
        pairs = [(images[s], masks[s]) for s in sorted(images.keys() & masks.keys())]
        return pairs, sorted(images.keys() ^ masks.keys())

    return pair_by_stem


def test_q2_right_in_any_order():
    assert ex.q2.check(_pairer(), show=False)

    def reversed_order(image_names, mask_names):
        pairs, unpaired = _pairer()(image_names, mask_names)
        return [list(p) for p in reversed(pairs)], set(unpaired)

    assert ex.q2.check(reversed_order, show=False)


def test_q2_positional_pairing_is_explained():
    def by_position(image_names, mask_names):  # the source tutorial's pairing
        return list(zip(sorted(image_names), sorted(mask_names), strict=False)), []

    status, message = _verdict(ex.q2, by_position)
    assert status == "incorrect" and "position" in message and "Pair by stem" in message


def test_q2_hidden_files_are_named():
    status, message = _verdict(ex.q2, _pairer(skip_hidden=False))
    assert status == "incorrect" and "hidden file" in message and "._b" in message


def test_q2_split_on_the_first_dot():
    status, message = _verdict(ex.q2, _pairer(stem=lambda n: n.split(".")[0]))
    assert status == "incorrect" and "last* dot" in message


def test_q2_case_sensitive_extensions():
    status, message = _verdict(ex.q2, _pairer(lower=False))
    assert status == "incorrect" and "img.v2.PNG" in message


def test_q2_whole_names_instead_of_stems():
    def by_name(image_names, mask_names):
        common = sorted(set(image_names) & set(mask_names))
        keep = [n for n in common if not n.startswith(".") and Path(n).suffix in IMAGE_EXTENSIONS]
        return [(n, n) for n in keep], []

    status, message = _verdict(ex.q2, by_name)
    assert status == "incorrect" and "compare stems" in message


def test_q2_file_names_in_unpaired():
    def names_not_stems(image_names, mask_names):
        pairs, unpaired = _pairer()(image_names, mask_names)
        every = {Path(n).stem: n for n in [*image_names, *mask_names]}
        return pairs, [every[s] for s in unpaired]

    status, message = _verdict(ex.q2, names_not_stems)
    assert status == "incorrect" and "should hold stems" in message


def test_q2_wrong_return_shape():
    status, message = _verdict(ex.q2, lambda i, m: _pairer()(i, m)[0])
    assert status == "incorrect" and "(pairs, unpaired)" in message


def test_q2_placeholder_is_not_attempted():
    def pair_by_stem(image_names, mask_names): ...

    assert _verdict(ex.q2, pair_by_stem)[0] == "not_attempted"


# ---- q3: class_pixel_counts ---------------------------------------------------------------------


def test_q3_right():
    def counts(masks, num_classes, ignore_index=255):
        return torch.bincount(masks[masks != ignore_index], minlength=num_classes)

    def per_class(masks, num_classes, ignore_index=255):
        return torch.stack([(masks == c).sum() for c in range(num_classes)])

    assert ex.q3.check(counts, show=False)
    assert ex.q3.check(per_class, show=False)


def test_q3_missing_minlength():
    status, message = _verdict(
        ex.q3, lambda masks, k, ignore_index=255: torch.bincount(masks[masks != ignore_index])
    )
    assert status == "incorrect" and "minlength" in message


def test_q3_counting_the_ignored_value():
    status, message = _verdict(
        ex.q3, lambda masks, k, ignore_index=255: torch.bincount(masks.flatten(), minlength=k)
    )
    assert status == "incorrect" and "255 was counted" in message


def test_q3_ignored_pixels_added_to_background():
    def into_background(masks, num_classes, ignore_index=255):
        return torch.bincount(masks.masked_fill(masks == 255, 0).flatten(), minlength=num_classes)

    status, message = _verdict(ex.q3, into_background)
    assert status == "incorrect" and "ignored pixels" in message


def test_q3_float_counts():
    def histc(masks, num_classes, ignore_index=255):
        kept = masks[masks != ignore_index].float()
        return torch.histc(kept, bins=num_classes, min=0, max=num_classes - 1)

    status, message = _verdict(ex.q3, histc)
    assert status == "incorrect" and "int64" in message


def test_q3_shares_instead_of_counts():
    def shares(masks, num_classes, ignore_index=255):
        counts = torch.bincount(masks[masks != ignore_index], minlength=num_classes)
        return counts.double() / counts.sum()

    status, message = _verdict(ex.q3, shares)
    assert status == "incorrect" and "look like shares" in message


def test_q3_placeholder_is_not_attempted():
    def class_pixel_counts(masks, num_classes, ignore_index=255):
        raise NotImplementedError("your code here")

    assert _verdict(ex.q3, class_pixel_counts)[0] == "not_attempted"


# ---- q4: resize_mask ---------------------------------------------------------------------------


def _interpolate(mode, **kwargs):
    def resize_mask(mask, size):
        return F.interpolate(mask[None, None].float(), size=size, mode=mode, **kwargs)[0, 0]

    return resize_mask


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_q4_right_with_either_torch_convention(mode):
    assert ex.q4.check(lambda m, s: _interpolate(mode)(m, s).long(), show=False)


def test_q4_right_with_pil_and_torchvision():
    def with_pil(mask, size):
        small = Image.fromarray(mask.numpy().astype(np.uint8)).resize(size[::-1], Image.NEAREST)
        return torch.from_numpy(np.array(small)).long()

    def with_v2(mask, size):
        return TF.resize(tv_tensors.Mask(mask), list(size)).as_subclass(torch.Tensor)

    assert ex.q4.check(with_pil, show=False)
    assert ex.q4.check(with_v2, show=False)


def test_q4_bilinear_invents_labels():
    status, message = _verdict(ex.q4, lambda m, s: _interpolate("bilinear")(m, s).round().long())
    assert status == "incorrect" and "no label of the mask" in message and "nearest" in message


def test_q4_float_result():
    status, message = _verdict(ex.q4, _interpolate("nearest"))
    assert status == "incorrect" and "int64" in message


def test_q4_swapped_size():
    status, message = _verdict(ex.q4, lambda m, s: _interpolate("nearest")(m, s[::-1]).long())
    assert status == "incorrect" and "(height, width)" in message


def test_q4_batch_axes_kept():
    def keeps_axes(mask, size):
        return F.interpolate(mask[None, None].float(), size=size).long()

    status, message = _verdict(ex.q4, keeps_axes)
    assert status == "incorrect" and "[0, 0]" in message


def test_q4_crash_is_explained_not_raised():
    status, message = _verdict(ex.q4, lambda m, s: F.interpolate(m, size=s))
    assert status == "incorrect" and "Your code raised" in message


def test_q4_placeholder_is_not_attempted():
    def resize_mask(mask, size): ...

    assert _verdict(ex.q4, resize_mask)[0] == "not_attempted"


# ---- q5 (a decision) and the questionnaire --------------------------------------------------


def test_q5_solution_and_a_confused_pair():
    answers = {"a": "totensor", "b": "bilinear", "c": "palette", "d": "binary_255",
               "e": "position", "f": "separate"}  # fmt: skip
    assert ex.q5.check(lambda: answers, show=False)
    result = ex.q5.check(lambda: answers | {"e": "separate", "f": "position"}, show=False)
    assert not result and "2 of 6" in result.message and "shift every pair" in result.message


def test_quiz_tolerances_and_a_wrong_count():
    answers = dict(ex.quiz.answers)
    assert ex.quiz.check(lambda: answers | {1: 0.00392, 3: 100.0, 11: 86.1}, show=False)
    result = ex.quiz.check(lambda: answers | {4: 5, 7: 1}, show=False)
    assert not result and "2 of 11" in result.message and "121 distinct" in result.message
