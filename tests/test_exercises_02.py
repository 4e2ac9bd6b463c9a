"""Tests for segtutor.exercises.ex02: the solutions pass, typical mistakes fail with a useful note."""

import torch
import torch.nn.functional as F
from torch import nn

from segtutor.exercises import ex02 as ex

# ---- q1: count_conv_params ------------------------------------------------------------------


def count_conv_params(in_channels, out_channels, kernel_size, bias=True):
    weights = out_channels * in_channels * kernel_size * kernel_size
    return weights + (out_channels if bias else 0)


def test_q1_solution_passes():
    assert ex.q1.check(count_conv_params, show=False)


def test_q1_forgot_bias():
    result = ex.q1.check(lambda i, o, k, bias=True: o * i * k * k, show=False)
    assert not result and "without the bias" in result.message


def test_q1_kernel_not_squared():
    result = ex.q1.check(lambda i, o, k, bias=True: o * i * k + (o if bias else 0), show=False)
    assert not result and "square the kernel size" in result.message


def test_q1_forgot_in_channels():
    result = ex.q1.check(lambda i, o, k, bias=True: o * k * k + (o if bias else 0), show=False)
    assert not result and "in_channels" in result.message


def test_q1_float_is_refused():
    result = ex.q1.check(
        lambda i, o, k, bias=True: float(count_conv_params(i, o, k, bias)), show=False
    )
    assert not result and "should be an int" in result.message


def test_q1_not_attempted():
    def count_conv_params(in_channels, out_channels, kernel_size, bias=True):
        raise NotImplementedError("your code here")

    assert ex.q1.check(count_conv_params, show=False).status == "not_attempted"


# ---- q2: double_conv ------------------------------------------------------------------------


def _block(in_c, out_c, *, padding=1, bias=False, order="cbr", last_relu=True, mid=None):
    mid = mid or out_c
    layers = []
    for a, b in ((in_c, mid), (mid, out_c)):
        parts = {
            "c": nn.Conv2d(a, b, 3, padding=padding, bias=bias),
            "b": nn.BatchNorm2d(b),
            "r": nn.ReLU(),
        }
        layers += [parts[k] for k in order]
    if not last_relu:
        layers = layers[:-1]
    return nn.Sequential(*layers)


def double_conv(in_channels, out_channels):
    return _block(in_channels, out_channels)


def test_q2_solution_passes():
    assert ex.q2.check(double_conv, show=False)


def test_q2_segtutor_doubleconv_passes():
    from segtutor.model import DoubleConv

    assert ex.q2.check(DoubleConv, show=False)


def test_q2_no_padding():
    result = ex.q2.check(lambda i, o: _block(i, o, padding=0), show=False)
    assert not result and "padding=1" in result.message


def test_q2_bias():
    result = ex.q2.check(lambda i, o: _block(i, o, bias=True), show=False)
    assert not result and "bias=False" in result.message


def test_q2_relu_before_batchnorm():
    result = ex.q2.check(lambda i, o: _block(i, o, order="crb"), show=False)
    assert not result and "conv, then BatchNorm, then ReLU" in result.message


def test_q2_missing_last_relu():
    result = ex.q2.check(lambda i, o: _block(i, o, last_relu=False), show=False)
    assert not result and "ReLU" in result.message


def test_q2_missing_batchnorm():
    def no_bn(i, o):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(o, o, 3, padding=1, bias=False),
            nn.ReLU(),
        )

    result = ex.q2.check(no_bn, show=False)
    assert not result and "BatchNorm2d is missing" in result.message


def test_q2_wrong_channels_in_second_conv_explains():
    def wrong(i, o):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(),
            nn.Conv2d(i, o, 3, padding=1, bias=False),
        )

    result = ex.q2.check(wrong, show=False)
    assert not result and "channels" in result.message


def test_q2_not_a_module():
    result = ex.q2.check(lambda i, o: [nn.Conv2d(i, o, 3)], show=False)
    assert not result and "nn.Module" in result.message


def test_q2_not_attempted():
    def double_conv(in_channels, out_channels):
        raise NotImplementedError("your code here")

    assert ex.q2.check(double_conv, show=False).status == "not_attempted"


# ---- q3: pad_to_match -----------------------------------------------------------------------


def pad_to_match(x, skip):
    diff_y = skip.shape[2] - x.shape[2]
    diff_x = skip.shape[3] - x.shape[3]
    return F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])


def test_q3_solution_passes():
    assert ex.q3.check(pad_to_match, show=False)


def test_q3_all_padding_on_one_side():
    def one_side(x, skip):
        return F.pad(x, [0, skip.shape[3] - x.shape[3], 0, skip.shape[2] - x.shape[2]])

    result = ex.q3.check(one_side, show=False)
    assert not result and "Split the padding" in result.message


def test_q3_dimensions_swapped():
    def swapped(x, skip):
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        return F.pad(x, [dy // 2, dy - dy // 2, dx // 2, dx - dx // 2])

    result = ex.q3.check(swapped, show=False)
    assert not result and "LAST dimension first" in result.message


def test_q3_returned_the_concatenation():
    result = ex.q3.check(lambda x, s: torch.cat([s, pad_to_match(x, s)], dim=1), show=False)
    assert not result and "concatenates" in result.message


def test_q3_interpolated_instead_of_padding():
    result = ex.q3.check(
        lambda x, s: F.interpolate(x, size=s.shape[2:], mode="bilinear"), show=False
    )
    assert not result and "Pad with zeros" in result.message


def test_q3_not_attempted():
    def pad_to_match(x, skip):
        raise NotImplementedError("your code here")

    assert ex.q3.check(pad_to_match, show=False).status == "not_attempted"


# ---- q4 (predict, then run) and the questionnaire -------------------------------------------


def test_q4_reference_is_the_models_own_shapes():
    assert ex.q4.reference() == {"bottleneck": (2, 128, 12, 20), "ups[0] concat": (2, 128, 24, 40),
                                 "logits": (2, 3, 96, 160), "stride": 8}  # fmt: skip


def test_q4_a_depth_4_guess_is_explained():
    def predict_shapes():  # four halvings, as in the notebook's course model
        return {"bottleneck": (2, 256, 6, 10), "ups[0] concat": (2, 256, 12, 20),
                "logits": (2, 3, 96, 160), "stride": 16}  # fmt: skip

    result = ex.q4.check(predict_shapes, show=False)
    assert not result and "3 of 4" in result.message and "Three halvings" in result.message


def test_quiz_solution_and_tolerances():
    answers = dict(ex.quiz.answers)
    assert ex.quiz.check(lambda: answers | {4: 0.14, 5: 31.04, 8: [48, 64]}, show=False)
    result = ex.quiz.check(lambda: answers | {3: 16, 8: (37, 53)}, show=False)
    assert not result and "2 of 10" in result.message and "multiples of 16" in result.message
