"""segtutor.architectures and segtutor.pretrained: every model on the UNet's footing, offline.

Nothing here may touch the network: an autouse fixture makes torch.hub's download raise, so a
model built without `pretrained` proves it downloads nothing, and the ImageNet path is tested on
a state dict this file writes into a temporary `TORCH_HOME` under the name torchvision looks for.
"""

from __future__ import annotations

import re
import urllib.error

import pytest
import torch
from torchvision.models import mobilenet_v3_large, resnet18

from segtutor.architectures import (
    MODELS,
    BackboneUNet,
    TorchvisionSegmenter,
    build_model,
    encoder_parameters,
    freeze_encoder,
    model_config,
    model_from_config,
)
from segtutor.errors import DataError
from segtutor.model import UNet, count_flops, count_parameters
from segtutor.pretrained import IMAGENET_WEIGHTS, PretrainedWeightsError, weights_file

# fcn-resnet50 (35 M parameters) is built in the slow tests only
FAST = [name for name in MODELS if name != "fcn-resnet50"]
ALL = [*FAST, pytest.param("fcn-resnet50", marks=pytest.mark.slow)]

# trainable parameters with 3 classes, no auxiliary heads: the figures notebook 08 compares
PARAMETERS = {
    "unet": 486_571,
    "unet-resnet18": 15_934_659,
    "unet-mobilenetv3": 3_454_163,
    "fcn-resnet50": 32_947_779,
    "deeplabv3-mobilenetv3": 11_020_851,
    "lraspp-mobilenetv3": 3_218_478,
}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test may download: torch.hub's downloader raises, and the cache is an empty folder."""

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"offline test: refused to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.mark.parametrize("name", ALL)
def test_every_model_obeys_the_unet_output_contract(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3)
    assert model.name == name and model.num_classes == 3 and model.in_channels == 3
    images = torch.randn(2, 3, 37, 45)  # odd sizes: padded (or resized) and cropped back
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 3, 37, 45)
    model.train()
    logits = model(images)  # no deep supervision: logits alone in training mode too
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 3, 37, 45)
    logits.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ALL)
def test_parameter_and_flop_counts(name):
    model = build_model(name, num_classes=3)
    assert count_parameters(model) == PARAMETERS[name]
    flops = count_flops(model, (1, 3, 64, 64))
    assert flops > 0
    # convolutions only: twice the resolution, about four times the work
    assert count_flops(model, (1, 3, 128, 128)) == pytest.approx(4 * flops, rel=0.05)


@pytest.mark.parametrize("name", ["unet", "unet-resnet18", "unet-mobilenetv3"])
def test_deep_supervision_of_the_unets_gives_coarse_logits_at_1_16_1_8_1_4(name):
    model = build_model(name, num_classes=3, deep_supervision=True).train()
    logits, aux = model(torch.randn(2, 3, 64, 96))
    assert logits.shape == (2, 3, 64, 96)
    if name == "unet":  # depth 4: 1/8, 1/4, 1/2
        assert [a.shape[-2:] for a in aux] == [(8, 12), (16, 24), (32, 48)]
    else:  # the backbone's 1/32 bottleneck: 1/16, 1/8, 1/4
        assert [a.shape[-2:] for a in aux] == [(4, 6), (8, 12), (16, 24)]
    assert isinstance(model.eval()(torch.randn(1, 3, 64, 96)), torch.Tensor)


def test_torchvisions_dict_becomes_logits_and_one_aux():
    torch.manual_seed(0)
    model = build_model("deeplabv3-mobilenetv3", num_classes=3, deep_supervision=True)
    assert isinstance(model, TorchvisionSegmenter) and model.deep_supervision
    images = torch.randn(2, 3, 48, 40)
    model.train()
    torch.manual_seed(1)  # the same dropout masks for both
    logits, aux = model(images)
    torch.manual_seed(1)
    raw = model.net(images)  # torchvision's own dict, the same batch statistics
    assert logits.shape == aux[0].shape == (2, 3, 48, 40) and len(aux) == 1
    torch.testing.assert_close(logits, raw["out"])
    torch.testing.assert_close(aux[0], raw["aux"])
    model.eval()
    torch.testing.assert_close(model(images), model.net(images)["out"])
    # LR-ASPP has no auxiliary head: deep supervision is not asked of it
    assert build_model("lraspp-mobilenetv3", 3, deep_supervision=True).deep_supervision is False


@pytest.mark.parametrize("name", FAST)
def test_encoder_parameters_are_the_backbone(name):
    model = build_model(name, num_classes=3)
    encoder = {id(p) for p in encoder_parameters(model)}
    everything = {id(p) for p in model.parameters()}
    assert encoder and encoder < everything  # a decoder or head remains
    if isinstance(model, UNet):
        expected = [*model.inc.parameters(), *model.downs.parameters()]
    elif isinstance(model, BackboneUNet):
        expected = list(model.encoder.parameters())
    else:
        expected = list(model.net.backbone.parameters())
    assert encoder == {id(p) for p in expected}
    head = model.outc if hasattr(model, "outc") else model.net.classifier
    assert not {id(p) for p in head.parameters()} & encoder
    freeze_encoder(model)
    assert count_parameters(model) == sum(
        p.numel() for p in model.parameters() if id(p) not in encoder
    )
    freeze_encoder(model, False)
    assert count_parameters(model) == PARAMETERS[name]


def test_encoder_parameters_asks_the_model():
    with pytest.raises(ValueError, match="no encoder_parameters"):
        encoder_parameters(torch.nn.Conv2d(3, 2, 1))


@pytest.mark.parametrize("name", FAST)
def test_model_config_rebuilds_the_same_model(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=3, deep_supervision=True).eval()
    config = model_config(model)
    assert config["name"] == name and config["num_classes"] == 3
    rebuilt = model_from_config(config)
    rebuilt.load_state_dict(model.state_dict())
    images = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(images), model(images))


def test_a_config_without_a_name_is_a_unet():
    old = {"in_channels": 3, "num_classes": 2, "base_width": 4, "depth": 2, "bilinear": False,
           "deep_supervision": False}  # fmt: skip
    model = model_from_config(old)
    assert isinstance(model, UNet) and model.base_width == 4 and model.depth == 2
    assert model_config(model) == {"name": "unet", **old, "decoder_convs": 2}  # the paper's
    assert model_config(torch.nn.Conv2d(3, 2, 1)) is None


def test_bad_choices_are_refused():
    with pytest.raises(ValueError, match="unknown model 'unet-vgg'"):
        build_model("unet-vgg")
    with pytest.raises(ValueError, match="has one size"):
        build_model("lraspp-mobilenetv3", preset="tiny")
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model("unet", pretrained="imagenet")
    with pytest.raises(ValueError, match="unknown pretrained"):
        build_model("unet-resnet18", pretrained="coco")
    with pytest.raises(ValueError, match="unet's decoder only; unet-resnet18"):
        build_model("unet-resnet18", decoder_convs=1)


def test_a_one_conv_decoder_is_rebuilt_from_its_config():
    torch.manual_seed(0)
    model = build_model("unet", num_classes=3, preset="tiny", decoder_convs=1).eval()
    config = model_config(model)
    assert config["decoder_convs"] == 1
    rebuilt = model_from_config(config)
    rebuilt.load_state_dict(model.state_dict())  # strict: the same layers
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(images), model(images))


# --- ImageNet weights, offline ------------------------------------------------------------------


def _cache(weights, state):
    """Put `state` where torchvision looks for `weights` (the URL's file name)."""
    path = weights_file(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_weights_file_is_torchvisions_cache(tmp_path):
    path = weights_file(IMAGENET_WEIGHTS["resnet18"])
    assert path == tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_unet_resnet18_loads_the_cached_imagenet_weights():
    torch.manual_seed(1)
    state = resnet18().state_dict()  # stands for the published weights: same keys and shapes
    _cache(IMAGENET_WEIGHTS["resnet18"], state)
    torch.manual_seed(2)
    model = build_model("unet-resnet18", num_classes=3, pretrained="imagenet")
    stem, layer1, layer2, layer3, layer4 = model.encoder.stages
    torch.testing.assert_close(stem[0].weight, state["conv1.weight"])
    torch.testing.assert_close(stem[1].running_var, state["bn1.running_var"])
    torch.testing.assert_close(layer1[1][0].conv1.weight, state["layer1.0.conv1.weight"])
    torch.testing.assert_close(layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    fresh = build_model("unet-resnet18", num_classes=3)
    assert not torch.equal(fresh.encoder.stages[0][0].weight, state["conv1.weight"])


def test_torchvision_models_load_the_cached_backbone_weights():
    torch.manual_seed(1)
    state = mobilenet_v3_large().state_dict()
    _cache(IMAGENET_WEIGHTS["mobilenet_v3_large"], state)
    model = build_model("lraspp-mobilenetv3", num_classes=3, pretrained="imagenet")
    backbone = model.net.backbone  # torchvision's IntermediateLayerGetter over `features`
    torch.testing.assert_close(backbone["0"][0].weight, state["features.0.0.weight"])
    torch.testing.assert_close(
        backbone["13"].block[0][0].weight, state["features.13.block.0.0.weight"]
    )
    unet = build_model("unet-mobilenetv3", num_classes=3, pretrained="imagenet")
    torch.testing.assert_close(unet.encoder.stages[4][0].block[0][0].weight,
                               state["features.13.block.0.0.weight"])  # fmt: skip


def test_offline_without_the_file_says_which_file_to_put_where():
    weights = IMAGENET_WEIGHTS["resnet18"]
    with pytest.raises(PretrainedWeightsError) as caught:
        build_model("unet-resnet18", num_classes=3, pretrained="imagenet")
    message = str(caught.value)
    assert str(weights_file(weights)) in message  # the exact path...
    assert weights.url in message  # ...and where to get the file
    assert "download failed" in message and "URLError" in message
    assert isinstance(caught.value, DataError)  # the command line: exit 2, no traceback


def test_a_damaged_weights_file_is_named():
    path = weights_file(IMAGENET_WEIGHTS["mobilenet_v3_large"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with pytest.raises(PretrainedWeightsError, match="cannot be loaded") as caught:
        build_model("deeplabv3-mobilenetv3", num_classes=3, pretrained="imagenet")
    assert str(path) in str(caught.value)


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from segtutor.synth import write_dataset

    root = tmp_path_factory.mktemp("scenes")
    write_dataset(root, "scenes", n_train=4, n_val=2, size=(64, 64), seed=0)
    return root


def _train_argv(scenes, out, *extra):
    return ["train", "--data", str(scenes), "--out", str(out), "--epochs", "1", "--size", "32",
            "--batch-size", "2", "--quiet", "--device", "cpu", *extra]  # fmt: skip


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--model", "lraspp-mobilenetv3", "--preset", "tiny"], "has one size"),
        (["--pretrained", "imagenet"], "no pretrained weights"),
        (["--model", "fcn-resnet50", "--decoder-convs", "2"], "has its own decoder"),
    ],
)
def test_train_refuses_options_that_do_not_go_together(extra, expected, tmp_path, capsys):
    from segtutor.cli import main

    assert main(_train_argv(tmp_path, tmp_path / "run", *extra)) == 2
    assert expected in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one start or the other
        main(_train_argv(tmp_path, tmp_path / "run", "--pretrained", "imagenet", "--init-from",
                         "x.pt"))  # fmt: skip


def test_train_offline_with_pretrained_names_the_file_and_exits_2(scenes, tmp_path, capsys):
    from segtutor.cli import main

    argv = _train_argv(scenes, tmp_path / "run", "--model", "unet-resnet18", "--pretrained",
                       "imagenet")  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(weights_file(IMAGENET_WEIGHTS["resnet18"])) in err
    assert IMAGENET_WEIGHTS["resnet18"].url in err and "Traceback" not in err


@pytest.mark.slow  # trains and exports through the whole command line
def test_every_verb_works_for_a_relative(scenes, tmp_path, capsys):
    from segtutor.cli import main

    run = tmp_path / "run"
    assert main(_train_argv(scenes, run, "--model", "lraspp-mobilenetv3", "--freeze-encoder",
                            "1", "--encoder-lr-factor", "0.1")) == 0  # fmt: skip
    assert "lraspp-mobilenetv3" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(scenes)]) == 0
    report = capsys.readouterr().out  # the per-class table of IoU and Dice, then their mean
    assert "IoU" in report and re.search(r"^mean\s+0\.\d{4}", report, re.MULTILINE)
    out = tmp_path / "masks"
    code = main(["predict", "--checkpoint", str(run / "best.pt"), "--input",
                 str(scenes / "val" / "images"), "--output", str(out)])  # fmt: skip
    assert code == 0 and len(list(out.glob("*_overlay.png"))) == 2
    again = tmp_path / "again"  # a new run that starts from the first one's weights
    argv = _train_argv(scenes, again, "--init-from", str(run / "best.pt"), "--num-classes", "4")
    assert main(argv) == 0 and "weight tensors reused" in capsys.readouterr().out


@pytest.mark.slow  # an ONNX export of a backbone takes several seconds
@pytest.mark.parametrize("name", ["unet-resnet18", "lraspp-mobilenetv3"])
def test_onnx_export_agrees_with_eager(name, tmp_path):
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime", reason="the export extras: segtutor[export]")
    from segtutor.checkpoint import save_checkpoint
    from segtutor.export import export_model

    torch.manual_seed(0)
    model = build_model(name, num_classes=3).eval()
    path = save_checkpoint(tmp_path / "best.pt", model_state=model.state_dict(),
                           model_config=model_config(model))  # fmt: skip
    exported = export_model(path, "onnx", tmp_path / "model.onnx")
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    for height, width in [(64, 64), (70, 90)]:
        images = torch.randn(2, 3, height, width)
        (logits,) = session.run(["logits"], {"images": images.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(logits, model(images).numpy(), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", FAST)
def test_batchnorm_statistics_catch_up_with_the_data_within_100_batches(name):
    """Eval mode must divide by the variances training saw, after the course's few hundred steps.

    torchvision's MobileNetV3 keeps BatchNorm momentum 0.01, and from random weights its
    depthwise convolutions give outputs of variance far below 1, where `running_var` starts:
    after 100 batches the running variances were still hundreds of times too large, so in eval
    mode the features shrank block after block and DeepLabV3 predicted background everywhere.
    """
    torch.manual_seed(0)
    model = build_model(name, num_classes=3).train()
    images = torch.randn(2, 3, 48, 48)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seen = {}
    for norm in norms:  # the variance of each BatchNorm's input over the batch, per channel
        norm.register_forward_hook(
            lambda m, inputs, _, seen=seen: seen.__setitem__(m, inputs[0].var((0, 2, 3)))
        )
    with torch.no_grad():
        for _ in range(100):
            model(images)
    # what eval mode divides by against what training divided by (both plus BatchNorm's eps,
    # both unbiased as BatchNorm keeps them): 1 once caught up; the median channel of each
    factors = [((n.running_var + n.eps) / (seen[n] + n.eps)).median().item() for n in norms]
    worst = max(max(f, 1 / f) for f in factors)
    assert worst < 2, f"a running variance is {worst:.0f}x off the data's after 100 batches"
