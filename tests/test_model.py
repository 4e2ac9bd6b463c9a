"""Tests for segtutor.model: shapes for any input size, exact sizes, FLOPs, gradients."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segtutor.losses import DeepSupervisionLoss
from segtutor.model import (
    PRESETS,
    DoubleConv,
    Down,
    OutConv,
    UNet,
    Up,
    build_unet,
    count_flops,
    count_parameters,
)


@pytest.mark.parametrize("bilinear", [False, True])
@pytest.mark.parametrize("size", [(64, 64), (37, 53), (17, 29), (1, 1), (48, 16)])
def test_output_shape_for_any_input_size(size, bilinear):
    model = UNet(num_classes=3, base_width=4, depth=4, bilinear=bilinear).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits = model(torch.randn(2, 3, *size))
    assert logits.shape == (2, 3, *size)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_other_depths(depth):
    model = UNet(num_classes=2, base_width=4, depth=depth).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    assert len(model.downs) == len(model.ups) == depth


def test_padding_is_said_once_and_matches_manual_zero_padding():
    model = UNet(num_classes=2, base_width=4, depth=3).eval()  # needs multiples of 8
    images = torch.randn(1, 3, 13, 21)
    with pytest.warns(UserWarning, match="padding 13x21 images to 16x24"):
        logits = model(images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        model(images)
        model(torch.randn(1, 3, 16, 24))  # no padding needed: silent anyway
    # Padding at the bottom/right with zeros, then cropping, is what forward does.
    expected = model(F.pad(images, [0, 3, 0, 3]))[..., :13, :21]
    torch.testing.assert_close(logits, expected)


def test_parts_shapes_and_up_pads_to_the_skip():
    x = torch.randn(2, 3, 19, 27)
    assert DoubleConv(3, 8)(x).shape == (2, 8, 19, 27)
    assert Down(3, 8)(x).shape == (2, 8, 9, 13)  # MaxPool floors odd sizes
    assert OutConv(3, 5)(x).shape == (2, 5, 19, 27)
    skip = torch.randn(2, 8, 19, 27)
    # transposed: x has in_channels (16), upsampled to 18x26, padded to 19x27
    assert Up(16, 4, bilinear=False)(torch.randn(2, 16, 9, 13), skip).shape == (2, 4, 19, 27)
    # bilinear: x already has in_channels // 2 (8)
    assert Up(16, 4, bilinear=True)(torch.randn(2, 8, 9, 13), skip).shape == (2, 4, 19, 27)


@pytest.mark.parametrize("bilinear", [False, True])
def test_a_one_conv_decoder_keeps_the_shapes_with_fewer_weights_and_flops(bilinear):
    skip = torch.randn(2, 8, 19, 27)
    x = torch.randn(2, 8 if bilinear else 16, 9, 13)
    up = Up(16, 4, bilinear=bilinear, convs=1)
    assert up(x, skip).shape == (2, 4, 19, 27)
    assert sum(isinstance(m, nn.Conv2d) for m in up.conv.modules()) == 1
    model = UNet(num_classes=3, base_width=4, bilinear=bilinear, decoder_convs=1).eval()
    paper = UNet(num_classes=3, base_width=4, bilinear=bilinear).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert count_parameters(model) < count_parameters(paper)
    assert count_flops(model, (1, 3, 64, 64)) < count_flops(paper, (1, 3, 64, 64))
    with pytest.raises(ValueError, match="1 or 2 convolutions, got 3"):
        UNet(decoder_convs=3)


def test_course_unet_with_one_conv_per_decoder_level():
    model = build_unet("course", num_classes=4, decoder_convs=1)
    assert model.decoder_convs == 1
    assert count_parameters(model) == 437_380  # 486_580 with the paper's two
    assert round(count_flops(model) / 1e9, 2) == 0.31  # 0.38 with two


def test_full_unet_has_the_tutorials_parameter_count():
    # Same numbers as milesial/Pytorch-UNet for 2 classes.
    assert count_parameters(UNet(num_classes=2)) == 31_037_698
    assert count_parameters(UNet(num_classes=2, bilinear=True)) == 17_263_042
    assert count_parameters(build_unet("full", num_classes=2)) == 31_037_698


def test_presets():
    assert PRESETS["full"] == dict(base_width=64, depth=4, bilinear=False)
    model = build_unet("course", num_classes=4)
    assert model.num_classes == 4 and model.in_channels == 3
    assert count_parameters(model) == 486_580  # base 8: about 1/64 of the full U-Net
    assert count_parameters(build_unet("tiny", num_classes=4)) == 121_204
    with pytest.raises(ValueError, match="unknown preset"):
        build_unet("huge")


def test_count_parameters_skips_frozen_and_buffers():
    model = UNet(num_classes=2, base_width=4, depth=2)
    total = count_parameters(model)
    model.outc.conv.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.outc.conv.weight.numel()


def test_flops_positive_and_four_times_at_twice_the_resolution():
    model = build_unet("tiny", num_classes=4).train()
    small = count_flops(model, (1, 3, 64, 64))
    large = count_flops(model, (1, 3, 128, 128))
    assert small > 0
    assert large / small == pytest.approx(4.0, rel=0.01)
    assert count_flops(model, (2, 3, 64, 64)) == 2 * small
    assert model.training  # mode restored


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    for bilinear in (False, True):
        model = UNet(num_classes=3, base_width=4, depth=3, bilinear=bilinear).train()
        logits = model(torch.randn(2, 3, 32, 32))
        F.cross_entropy(logits, torch.randint(0, 3, (2, 32, 32))).backward()
        for name, param in model.named_parameters():
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name


def test_state_dict_holds_only_tensors():
    state = UNet(num_classes=2, base_width=4, depth=2).state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert UNet(num_classes=2, base_width=4, depth=2).load_state_dict(state)


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = UNet(num_classes=2, base_width=4, depth=2).eval()
    images = torch.randn(2, 3, 32, 32)
    expected = model(images)
    model = model.to(memory_format=torch.channels_last)
    logits = model(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bilinear", [False, True])
def test_deep_supervision_outputs_in_training_and_logits_alone_in_eval(bilinear):
    torch.manual_seed(0)
    model = UNet(num_classes=3, base_width=4, depth=3, bilinear=bilinear, deep_supervision=True)
    images = torch.randn(2, 3, 40, 24)  # 40 is padded to 48 and cropped back
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logits, aux = model.train()(images)
        assert logits.shape == (2, 3, 40, 24)
        # depth 3: levels 1/4 and 1/2, rounded up (the padded 48x24 gives 12x6 and 24x12,
        # cropped to the 40x24 image's ceil(40/4) x ceil(24/4) and ceil(40/2) x ceil(24/2))
        assert [a.shape for a in aux] == [(2, 3, 10, 6), (2, 3, 20, 12)]
        eval_logits = model.eval()(images)
    assert isinstance(eval_logits, torch.Tensor) and eval_logits.shape == (2, 3, 40, 24)
    # the main path is the plain U-Net's: the same weights without the heads give the same logits
    plain = UNet(num_classes=3, base_width=4, depth=3, bilinear=bilinear).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "aux_heads" not in k})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(plain(images), eval_logits)


def test_deep_supervision_aux_is_the_coarse_head_at_its_own_size():
    torch.manual_seed(0)
    model = UNet(num_classes=2, base_width=4, depth=2, deep_supervision=True).train()
    features = {}
    model.ups[0].register_forward_hook(lambda module, args, out: features.update(level0=out))
    _, (aux,) = model(torch.randn(1, 3, 16, 16))
    coarse = model.aux_heads[0](features["level0"])  # (1, 2, 8, 8): half the size at depth 2
    assert coarse.shape == (1, 2, 8, 8)
    torch.testing.assert_close(aux, coarse)


def test_deep_supervision_heads_get_gradients_and_are_few_parameters():
    torch.manual_seed(0)
    model = UNet(num_classes=3, base_width=8, depth=4, deep_supervision=True).train()
    logits, aux = model(torch.randn(2, 3, 32, 32))
    masks = torch.randint(0, 3, (2, 32, 32))
    DeepSupervisionLoss(nn.CrossEntropyLoss())((logits, aux), masks).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    extra = count_parameters(model) - count_parameters(UNet(num_classes=3, base_width=8, depth=4))
    assert extra == (64 + 1) * 3 + (32 + 1) * 3 + (16 + 1) * 3  # a 1x1 conv per coarse level
    assert build_unet("course", 3, deep_supervision=True).deep_supervision
