"""Exercises of 08_relatives.ipynb: `one_upsampling` (what FCN's coarse scores can draw),
`receptive_field` (a prediction before running), `choose_models` (a decision),
`epochs_to_reach` (for the transfer-learning experiment) and the questionnaire (`ex.quiz`).

Introduced in `08_relatives.ipynb`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from segtutor.exercises.compare import compare_tensors, compare_values, short
from segtutor.exercises.core import Case, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.settings import IGNORE_INDEX

__all__ = ["q1", "q2", "q3", "q4", "quiz", "progress"]


# ---- q1: one upsampling of coarse scores ----------------------------------------------------


def _one_upsampling(masks, stride, num_classes, *, pool="avg", mode="bilinear", ignore=True):
    """Class map `(N, H, W)` from the masks' class shares on a grid `stride` times coarser."""
    if ignore:  # an ignored pixel votes for no class
        votes = F.one_hot(masks.where(masks != IGNORE_INDEX, num_classes), num_classes + 1)
        votes = votes[..., :num_classes]
    else:
        votes = F.one_hot(masks.where(masks != IGNORE_INDEX, 0), num_classes)
    votes = votes.permute(0, 3, 1, 2).float()  # (N, C, H, W)
    pooling = F.avg_pool2d if pool == "avg" else F.max_pool2d
    coarse = pooling(votes, stride)  # (N, C, H / stride, W / stride): the class shares
    fine = F.interpolate(coarse, size=masks.shape[-2:], mode=mode)  # one upsampling
    return fine.argmax(dim=1)  # (N, H, W) int64


def _blobs(g: torch.Generator, n: int, size: int, num_classes: int) -> torch.Tensor:
    """`(n, size, size)` masks: discs of random classes on background, 255 along their edges."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    for i in range(n):
        for _ in range(3):
            cy, cx, r = (torch.rand(3, generator=g) * torch.tensor([size, size, size / 4])).tolist()
            distance = ((yy - cy) ** 2 + (xx - cx) ** 2).float().sqrt()
            cls = int(torch.randint(1, num_classes, (1,), generator=g))
            masks[i][distance < r + 2] = cls
            masks[i][(distance - r - 2).abs() < 0.7] = IGNORE_INDEX
    return masks


class OneUpsampling(Question):
    title = "What one upsampling can draw: class shares on a coarse grid, bilinear, argmax"
    hints = (
        "Turn the masks into one channel per class, `F.one_hot(...)`, moved to `(N, C, H, W)` "
        "with `.permute(0, 3, 1, 2).float()`. A pixel whose mask is 255 votes for no class: "
        "one-hot it as an extra class `num_classes`, then drop that channel.",
        "`F.avg_pool2d(votes, stride)` gives each class's share of every stride x stride cell: "
        "the best scores a coarse head could output. `F.interpolate(coarse, size=(H, W), "
        "mode='bilinear')` is FCN's one upsampling; `.argmax(dim=1)` the class map.",
    )
    solution_code = """\
def one_upsampling(masks, stride, num_classes):
    masks = masks.where(masks != 255, num_classes)                   # 255: an extra class ...
    votes = F.one_hot(masks, num_classes + 1)[..., :num_classes]     # ... that is dropped
    votes = votes.permute(0, 3, 1, 2).float()                        # (N, C, H, W)
    coarse = F.avg_pool2d(votes, stride)                             # (N, C, H/s, W/s)
    fine = F.interpolate(coarse, size=masks.shape[-2:], mode="bilinear")
    return fine.argmax(dim=1)                                        # (N, H, W)"""
    mistakes = (
        Mistake(lambda masks, stride, num_classes: _one_upsampling(masks, stride, num_classes,
                                                                   mode="nearest"),
                "Nearest-neighbour upsampling copies each coarse cell into a stride x stride "
                "block; FCN upsamples its scores bilinearly (`mode='bilinear'`), which draws "
                "smoother, better placed edges."),
        Mistake(lambda masks, stride, num_classes: _one_upsampling(masks, stride, num_classes,
                                                                   pool="max"),
                "Max pooling says only whether a class is present in a cell; the coarse scores "
                "should be each class's share of the cell: `F.avg_pool2d`."),
        Mistake(lambda masks, stride, num_classes: _one_upsampling(masks, stride, num_classes,
                                                                   ignore=False),
                "Pixels whose mask is 255 voted for background: an ignored pixel votes for no "
                "class (one-hot it as an extra class and drop that channel)."),
    )  # fmt: skip

    def reference(self, masks, stride, num_classes):
        return _one_upsampling(masks, stride, num_classes)

    def cases(self):
        g = self.generator()
        yield Case(_blobs(g, 2, 32, 3), 8, 3, label="2 masks 32x32, 3 classes, stride 8")
        yield Case(_blobs(g, 3, 64, 4), 16, 4, label="3 masks 64x64, 4 classes, stride 16")
        yield Case(_blobs(g, 1, 64, 2), 4, 2, label="1 mask 64x64, 2 classes, stride 4")

    def compare(self, expected, got, name):
        why = compare_tensors(expected, got, name)
        if why is None or not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return why
        # Classes tied on the coarse grid may be broken either way by other rounding: a few
        # pixels may differ from a right answer computed another way.
        differ = (got != expected).double().mean().item()
        return (
            None
            if differ < 0.01
            else f"`{name}` differs from the answer on {differ:.1%} of pixels."
        )


# ---- q2: receptive field and output stride of a stack ---------------------------------------


def _receptive_field(layers, *, dilation=True, strides=True, effective=None):
    rf, jump = 1, 1
    for kernel, stride, dil in layers:
        d = dil if dilation else 1
        span = (kernel - 1) * d if effective is None else effective(kernel, d)
        rf += span * (jump if strides else 1)
        jump *= stride
    return rf, jump


class ReceptiveField(Question):
    title = "Receptive field and output stride of a stack of (kernel, stride, dilation) layers"
    hints = (
        "A layer of kernel k and dilation d spreads its taps over (k - 1) * d + 1 pixels of its "
        "input: it adds (k - 1) * d input steps to the receptive field.",
        "Measured in image pixels, one step of a layer's input is the product of the strides of "
        "all the layers before it (the 'jump'): add (k - 1) * d * jump, then multiply jump by "
        "the layer's stride. The output stride is the final jump.",
    )
    solution_code = """\
def receptive_field(layers):
    rf, jump = 1, 1                        # one pixel; input steps are 1 pixel apart
    for kernel, stride, dilation in layers:
        rf += (kernel - 1) * dilation * jump
        jump *= stride                     # this layer's output steps, in image pixels
    return rf, jump"""
    mistakes = (
        Mistake(lambda layers: _receptive_field(layers, dilation=False),
                "The dilation was left out: a 3x3 kernel at dilation d spans 2d + 1 pixels."),
        Mistake(lambda layers: _receptive_field(layers, strides=False),
                "After a stride-2 layer, one step of the next layer's input is 2 image pixels: "
                "multiply each layer's span by the product of the strides before it."),
        Mistake(lambda layers: _receptive_field(layers, effective=lambda k, d: k * d - 1),
                "A kernel of k taps at dilation d spans (k - 1) * d + 1 pixels, not k * d."),
    )  # fmt: skip

    def reference(self, layers):
        return _receptive_field(layers)

    def cases(self):
        yield Case([(3, 1, 1), (3, 1, 1)], label="two 3x3 convolutions")
        yield Case([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)], label="3x3 at dilation 1, 2, 4, 8")
        vgg = [(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 3
        yield Case(vgg, label="three (conv, conv, 2x2 max-pool) blocks")
        resnet_like = [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2), (3, 1, 2)]
        yield Case(resnet_like, label="a 7x7/2 stem, a 3x3/2 pool, then strided and dilated 3x3")

    def explain_error(self, error, case):
        if isinstance(error, TypeError | ValueError):
            return "`layers` is a list of (kernel, stride, dilation) tuples: unpack three."
        return None

    def compare(self, expected, got, name):
        if isinstance(got, list):
            got = tuple(got)
        if isinstance(got, tuple) and len(got) == 2:
            got = tuple(v.item() if isinstance(v, torch.Tensor) else v for v in got)
            if not all(isinstance(v, int) or float(v).is_integer() for v in got):
                return f"`{name}` should hold two whole numbers, (receptive field, stride)."
            got = tuple(int(v) for v in got)
        return compare_values(expected, got, name)


# ---- q3: which relative for which job -------------------------------------------------------


class ChooseModels(ChoiceQuestion):
    title = "For each job, the model of `MODELS` to start from"
    hints = (
        "Ask what the job can afford: downloads (ImageNet weights), time per image, labelled "
        "images; and what it must draw: thin structures need the decoder's fine skips.",
        "LR-ASPP was designed for phones (Howard et al. 2019); the U-Nets over a torchvision "
        "encoder can start from ImageNet weights; the course's U-Net has none to start from.",
    )
    answers = {
        "a": "lraspp-mobilenetv3",
        "b": "unet",
        "c": ("unet-resnet18", "unet-mobilenetv3"),
    }
    solution_code = """\
def choose_models():
    return {"a": "lraspp-mobilenetv3", "b": "unet", "c": "unet-resnet18"}"""
    reasons = {
        "a": "A phone at video rate needs the fewest FLOPs per image: LR-ASPP on MobileNetV3 "
        "(its head is a few 1x1 convolutions), with ImageNet weights to start from.",
        "b": "No downloads means no pretrained encoder to gain from; thin walls need the full-"
        "resolution skips of a U-Net, and the course's is the one that trains fast on a CPU.",
        "c": "Sixteen images are too few to learn an encoder from scratch: start from ImageNet "
        "weights, keep the U-Net decoder for the edges (unet-resnet18 or unet-mobilenetv3).",
    }


# ---- q4: when does a curve reach a target ---------------------------------------------------


def _epochs_to_reach(val_miou, target, *, one_based=True, strict=False):
    for index, value in enumerate(val_miou):
        if not math.isnan(value) and (value > target if strict else value >= target):
            return index + 1 if one_based else index
    return None


class EpochsToReach(Question):
    title = "The first epoch (1-based) whose val mIoU reaches a target; None if none does"
    hints = (
        "Walk through `val_miou` with `enumerate`; the epoch of index i is i + 1.",
        "'Reaches' means `>=`. An epoch that was not validated has NaN, which is never >= "
        "anything: skip it. Return None when no epoch reaches the target.",
    )
    solution_code = """\
def epochs_to_reach(val_miou, target):
    for index, miou in enumerate(val_miou):
        if miou >= target:          # NaN (not validated) is never >= target
            return index + 1        # epochs count from 1
    return None"""
    mistakes = (
        Mistake(lambda val_miou, target: _epochs_to_reach(val_miou, target, one_based=False),
                "Epochs count from 1 (`History.epoch`): the epoch of index i is i + 1."),
        Mistake(lambda val_miou, target: _epochs_to_reach(val_miou, target, strict=True),
                "Reaching the target counts: use `>=`, not `>`."),
    )  # fmt: skip

    def reference(self, val_miou, target):
        return _epochs_to_reach(val_miou, target)

    def cases(self):
        yield Case([0.21, 0.44, 0.58, 0.61, 0.66], 0.6, label="a curve crossing 0.6")
        yield Case(
            [0.3, 0.7, 0.75, 0.72], 0.7, label="a curve that touches 0.7 exactly, then passes it"
        )
        yield Case([0.1, float("nan"), 0.2, 0.3], 0.5, label="a curve that never reaches 0.5")
        yield Case([0.6, 0.8], 0.5, label="a curve above 0.5 from the first epoch")

    def compare(self, expected, got, name):
        if expected is None:
            return None if got is None else f"`{name}` is {short(got)}; no epoch reaches it."
        return compare_values(expected, got, name)


# ---- the questionnaire ----------------------------------------------------------------------


class RelativesQuiz(Questionnaire):
    hints = (
        "Every answer is printed by a cell of this notebook or follows from its text: FCN's head "
        "sizes and the ceilings of section 1, the receptive fields and ASPP's grid of section 2, "
        "the table of section 3, freezing in section 4.",
        "A receptive field grows by (k - 1) x dilation x (the product of the strides before) per "
        "layer, from 1 pixel.",
    )
    solution_code = """\
def questionnaire():
    return {1: 2052, 2: 8, 3: "ring", 4: 31, 5: 16, 6: "1x1", 7: "low",
            8: "lraspp-mobilenetv3", 9: "encoder", 10: "random"}"""
    answers = {
        1: 2052, 2: 8, 3: "ring", 4: 31, 5: 16, 6: ("1x1", "1x1 convolution", "1x1 conv"),
        7: "low", 8: ("lraspp-mobilenetv3", "lraspp", "lr-aspp"), 9: "encoder", 10: "random",
    }  # fmt: skip
    reasons = {
        1: "One 1x1 convolution from 512 channels to 4 classes: 512 x 4 weights + 4 biases "
        "= 2,052 (FCN-32s's line).",
        2: "From 1/8 (16x16) the ceiling is mIoU 0.830; from 1/16 only 0.495.",
        3: "A 4x4 grid cannot hold a ring's hole of 20 pixels: the ring becomes a disc, IoU 0.00.",
        4: "1 + 2 x (1 + 2 + 4 + 8) = 31; dilation 1, 2, 4 measured 15 in section 2.",
        5: "96 / 6 = 16: torchvision dilates MobileNetV3's last stage instead of striding it.",
        6: "Every tap but the centre one lands 12 cells away, in the zero padding of a 6x6 grid: "
        "the branch is its centre tap alone, a 1x1 convolution.",
        7: "`{'low': 1/8, 'high': 1/16}`: 'low' is the (1, 40, 12, 12) map of a 96x96 crop.",
        8: "LR-ASPP over MobileNetV3: 0.14 GFLOPs per 96x96 crop, below the course U-Net's 0.17 "
        "(the course U-Net still trained the most images per second).",
        9: "`fit` turns `requires_grad` off for the model's `encoder_parameters()` for those "
        "epochs: the new head learns first.",
        10: "`build_model` builds torchvision's models with `weights=None, "
        "weights_backbone=None` unless `pretrained='imagenet'`: random weights, nothing "
        "downloaded.",
    }


q1, q2, q3, q4 = OneUpsampling(), ReceptiveField(), ChooseModels(), EpochsToReach()
quiz = RelativesQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
