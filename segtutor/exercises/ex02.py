"""Exercises of 02_unet.ipynb: `count_conv_params`, `double_conv`, `pad_to_match` (`ex.q1` to
`ex.q3`), `predict_shapes` (a prediction made before running, `ex.q4`) and the questionnaire
(`ex.quiz`).

Introduced in `02_unet.ipynb`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segtutor.exercises.compare import compare_tensors
from segtutor.exercises.core import Case, Incorrect, Mistake, Question
from segtutor.exercises.progress import make_progress
from segtutor.exercises.quiz import ChoiceQuestion, Questionnaire
from segtutor.model import DoubleConv, UNet, Up

__all__ = ["q1", "q2", "q3", "q4", "quiz", "progress"]


class CountConvParams(Question):
    title = "Count the parameters of a Conv2d layer"
    hints = (
        "Each of the `out_channels` filters is a `kernel_size x kernel_size` window over every "
        "one of the `in_channels` input channels.",
        "Weights: `out_channels * in_channels * kernel_size * kernel_size`; the bias adds one "
        "number per output channel, and only when `bias` is True.",
    )
    solution_code = """\
def count_conv_params(in_channels, out_channels, kernel_size, bias=True):
    weights = out_channels * in_channels * kernel_size * kernel_size
    return weights + (out_channels if bias else 0)"""

    def reference(self, in_channels, out_channels, kernel_size, bias=True):
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
        return sum(p.numel() for p in conv.parameters())

    mistakes = (
        Mistake(lambda i, o, k, bias=True: o * i * k * k,
                "That is the count without the bias: `bias=True` adds `out_channels`."),
        Mistake(lambda i, o, k, bias=True: o * i * k * k + o,
                "That includes a bias, but this conv has `bias=False`."),
        Mistake(lambda i, o, k, bias=True: o * i * k + o * bias,
                "The window is `kernel_size x kernel_size`: square the kernel size."),
        Mistake(lambda i, o, k, bias=True: o * k * k + o * bias,
                "Each filter spans every input channel: multiply by `in_channels` too."),
    )  # fmt: skip

    def cases(self):
        yield Case(5, 7, 3, bias=True)
        yield Case(5, 7, 3, bias=False)
        yield Case(16, 4, 1, bias=True)  # a 1x1 conv, like OutConv
        yield Case(3, 64, 5, bias=False)
        yield Case(12, 6, 2, bias=True)


class DoubleConvQuestion(Question):
    title = "Build a DoubleConv block: (conv 3x3 => BatchNorm => ReLU) x 2"
    hints = (
        "Return `nn.Sequential(...)` with six layers: Conv2d, BatchNorm2d, ReLU, Conv2d, "
        "BatchNorm2d, ReLU.",
        "`padding=1` keeps height and width with a 3x3 kernel; `bias=False` because the "
        "BatchNorm right after each conv has its own shift.",
        "The first conv maps `in_channels` to `out_channels`, the second `out_channels` to "
        "`out_channels`; each BatchNorm2d takes the channels of the conv before it.",
    )
    solution_code = """\
def double_conv(in_channels, out_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )"""
    check_inplace = False  # the arguments are ints

    def reference(self, in_channels, out_channels):
        return self._summary(DoubleConv(in_channels, out_channels), in_channels, out_channels)

    def cases(self):
        yield Case(3, 8)
        yield Case(5, 7)
        yield Case(16, 4)

    def run(self, answer, case):
        module = super().run(answer, case)
        if not isinstance(module, nn.Module):
            if module is None:
                return None
            raise Incorrect(
                f"`double_conv` should return an `nn.Module` (e.g. an `nn.Sequential`), but it "
                f"returned {type(module).__name__}."
            )
        return self._summary(module, *case.args)

    def _summary(self, module: nn.Module, in_channels: int, out_channels: int) -> dict[str, Any]:
        """What the block does to a fixed input, with the reference's weights copied in."""
        images = torch.randn(2, in_channels, 9, 12, generator=self.generator())
        ours = DoubleConv(in_channels, out_channels)
        with torch.no_grad():
            for p in ours.parameters():  # non-trivial BatchNorm scales and shifts too
                p.copy_(torch.randn(p.shape, generator=self.generator()))
        theirs = [p for p in module.parameters() if p.requires_grad]
        count = sum(p.numel() for p in theirs)
        shapes = [tuple(p.shape) for p in theirs]
        ref_shapes = [tuple(p.shape) for p in ours.parameters()]
        copied = shapes == ref_shapes
        if copied:
            with torch.no_grad():
                for p, q in zip(theirs, ours.parameters(), strict=True):
                    p.copy_(q)
        module.train()  # BatchNorm normalises with the batch's statistics
        try:
            with torch.no_grad():
                out = module(images)
        except Exception as error:
            raise Incorrect(
                f"Calling your block on a {tuple(images.shape)} input raised "
                f"{type(error).__name__}: {str(error).splitlines()[0]}. Check the in/out "
                "channels of each layer."
            ) from None
        if not isinstance(out, torch.Tensor):
            raise Incorrect(f"Your block returned {type(out).__name__}, not a tensor.")
        return {
            "shape": tuple(out.shape),
            "parameters": count,
            "parameter shapes": shapes,
            "output": out if copied else None,
        }

    def compare(self, expected, got, name):
        n, c, h, w = expected["shape"]
        gn, gc, gh, gw = got["shape"] + (0,) * (4 - len(got["shape"]))
        if got["shape"] != expected["shape"]:
            msg = f"The block's output has shape {got['shape']}; expected {expected['shape']}."
            if (gh, gw) == (h - 4, w - 4):
                msg += " Each 3x3 conv without padding trims 2 pixels: use `padding=1`."
            elif gc != c:
                msg += " The last conv (and BatchNorm) should have `out_channels` channels."
            return msg
        extra = got["parameters"] - expected["parameters"]
        if extra:
            msg = (
                f"Your block has {got['parameters']} parameters; expected {expected['parameters']}."
            )
            if extra == 2 * c:
                msg += (
                    " The difference is one bias per output channel per conv: set `bias=False` "
                    "(the BatchNorm after each conv already shifts)."
                )
            elif extra < 0 and -extra in (2 * c, 4 * c):
                msg += " A BatchNorm2d is missing after a conv."
            return msg
        if got["output"] is None:
            return (
                "Your block has the right number of parameters, but not the layers in the "
                f"expected order: its parameter shapes are {got['parameter shapes']}, expected "
                f"{expected['parameter shapes']} (conv, BatchNorm, conv, BatchNorm)."
            )
        if (got["output"] < 0).any():
            return (
                "The output has negative values: each step should be conv, then BatchNorm, "
                "then ReLU, so the block ends with a ReLU."
            )
        if compare_tensors(expected["output"], got["output"], "output", 1e-4, 1e-3):
            return (
                "Same layers, different output: the order within each step should be conv, "
                "then BatchNorm, then ReLU."
            )
        return None


_SPLIT = "Split the padding: `diff // 2` on one side, the rest on the other."


def _padded(x, skip, split):
    """`x` padded to the skip's (H, W), each difference `d` split as `split(d) = (before, after)`."""
    left, right = split(skip.shape[3] - x.shape[3])
    top, bottom = split(skip.shape[2] - x.shape[2])
    return F.pad(x, [left, right, top, bottom])


class PadToMatch(Question):
    title = "Pad the upsampled features to the skip's height and width, as Up does"
    hints = (
        "`diff_y = skip.shape[2] - x.shape[2]` and `diff_x = skip.shape[3] - x.shape[3]` are "
        "the missing rows and columns.",
        "`F.pad(x, [left, right, top, bottom])` pads the LAST dimension first (width), then "
        "height. Put half of each difference on each side: `diff // 2` before, "
        "`diff - diff // 2` after.",
    )
    solution_code = """\
def pad_to_match(x, skip):
    diff_y = skip.shape[2] - x.shape[2]
    diff_x = skip.shape[3] - x.shape[3]
    return F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])"""

    mistakes = (
        Mistake(lambda x, skip: _padded(x, skip, lambda d: (0, d)), _SPLIT),
        Mistake(lambda x, skip: _padded(x, skip, lambda d: (d, 0)), _SPLIT),
        Mistake(lambda x, skip: _padded(x, skip, lambda d: (d - d // 2, d // 2)),
                "The smaller half (`diff // 2`) goes first (left, top)."),
    )  # fmt: skip

    def reference(self, x, skip):
        up = Up(2, 2)  # the library's block, reduced to its padding: no upsampling, no conv
        up.up, up.conv = nn.Identity(), nn.Identity()
        return up(x, skip)[:, skip.shape[1] :]  # Up returns [skip, padded x] along channels

    def cases(self):
        g = self.generator()
        for (h, w), (sh, sw), c in (
            ((4, 6), (4, 6), 2),  # nothing to pad
            ((18, 26), (19, 27), 3),  # odd skip: one row and one column short
            ((4, 4), (6, 5), 2),  # two rows, one column
            ((2, 6), (5, 6), 1),  # three rows, no column
        ):
            x = torch.randn(2, c, h, w, generator=g)
            skip = torch.randn(2, c + 1, sh, sw, generator=g)
            yield Case(x, skip, label=f"x {tuple(x.shape)}, skip {tuple(skip.shape)}")

    def diagnose(self, expected, got):
        if not isinstance(got, torch.Tensor) or got.ndim != 4:
            return None
        x, skip = self.case.args
        d_y, d_x = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if got.shape[1] == x.shape[1] + skip.shape[1]:
            return "Return only the padded `x`; `Up` concatenates it with the skip later."
        if got.shape[1] != x.shape[1]:
            return "Pad `x` itself (keep its channels); leave the skip alone."
        if d_x != d_y and got.shape[2:] == (x.shape[2] + d_x, x.shape[3] + d_y):
            return "`F.pad` takes the LAST dimension first: [left, right, top, bottom]."
        if got.shape != expected.shape:
            return "`x` should come out with the skip's height and width."
        return "Pad with zeros (`F.pad`'s default), half of the difference on each side."


# ---- q4 (predict, then run) and the questionnaire: answers as a dict ------------------------


class PredictShapes(ChoiceQuestion):
    title = "Predict the shapes in UNet(num_classes=3, base_width=16, depth=3) on (2, 3, 96, 160)"
    hints = (
        "Each `Down` halves the height and width and doubles the channels; depth=3 means three "
        "`Down`s after `inc`, which has `base_width` channels.",
        "The bottleneck is `downs[2]`: 96 / 8 by 160 / 8, 16 * 8 channels. `ups[0]` concatenates "
        "the upsampled bottleneck (half its channels) with `downs[1]`'s output (as many).",
        "The stride of the bottleneck is how many input pixels apart its positions are: 2 per "
        "`Down`.",
    )
    solution_code = """\
def predict_shapes():
    return {"bottleneck": (2, 128, 12, 20), "ups[0] concat": (2, 128, 24, 40),
            "logits": (2, 3, 96, 160), "stride": 8}"""
    reasons = {
        "bottleneck": "Three halvings: 96 / 8 = 12, 160 / 8 = 20; channels 16 -> 32 -> 64 -> 128.",
        "ups[0] concat": "64 upsampled channels + 64 from the skip `downs[1]`, at 24x40.",
        "logits": "The logits have the input's height and width and one channel per class.",
        "stride": "2 x 2 x 2 = 8 input pixels between neighbouring bottleneck positions.",
    }

    def reference(self) -> dict:
        """The shapes, read off the model itself with forward hooks."""
        model = UNet(num_classes=3, base_width=16, depth=3).eval()
        shapes = {}

        def record(name):  # a hook that returns None leaves the output as it is
            return lambda module, args, *out: shapes.update({name: tuple((out or args)[0].shape)})

        hooks = [
            model.downs[-1].register_forward_hook(record("bottleneck")),
            model.ups[0].conv.register_forward_pre_hook(record("ups[0] concat")),
        ]
        with torch.no_grad():
            shapes["logits"] = tuple(model(torch.zeros(2, 3, 96, 160)).shape)
        for hook in hooks:
            hook.remove()
        return shapes | {"stride": 96 // shapes["bottleneck"][2]}


class UNetQuiz(Questionnaire):
    hints = (
        "Every answer is printed by a cell of this notebook: the parameter counts, the receptive "
        "field table, the IoU table of the grids, the odd-size warning, the deep-supervision "
        "heads.",
    )
    answers = {1: 824, 2: 16, 3: 140, 4: 0.138, 5: 31.0, 6: 17.3, 7: 4, 8: (48, 64),
               9: "bilinear", 10: 460}  # fmt: skip
    tolerances = {4: 0.01, 5: 0.1, 6: 0.1, 7: 0.2}
    reasons = {
        1: "(8*3*3*3) + 2*8 + (8*8*3*3) + 2*8 = 824.",
        2: "Four `Down`s: 2^4 = 16 pixels between bottleneck positions.",
        3: "The receptive field table ends at 140 px: more than the whole image.",
        4: "Ring IoU through the 8x8 grid: 0.138 in the table (the bar 0.188, the disc 0.410).",
        5: "31,037,828 parameters at base_width=64 with transposed convolutions.",
        6: "17,263,042 with bilinear upsampling, the tutorial's own default.",
        7: "A conv's weights grow with in_channels x out_channels: 2 x 2 = 4.",
        8: "The next multiples of 16 of 37 and 53 are 48 and 64 (the warning says so).",
        9: "`nn.Upsample` only interpolates; a transposed convolution learns its weights.",
        10: "Three 1x1 heads: 4 x (64 + 32 + 16) weights + 3 x 4 biases = 460.",
    }


q1, q2, q3 = CountConvParams(), DoubleConvQuestion(), PadToMatch()
q4, quiz = PredictShapes(), UNetQuiz()

# ex.progress(): a table of this notebook's questions and their state; .to_json(path) saves it
progress = make_progress(__name__)
