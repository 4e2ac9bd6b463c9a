"""The U-Net's relatives on the same footing: one `build_model(name)` for every architecture.

Introduced in `08_relatives.ipynb`. `MODELS` lists what `build_model` builds:

- `unet`: the course's U-Net (`segtutor.model`), sized by `PRESETS`;
- `unet-resnet18`, `unet-mobilenetv3`: the same U-Net figure with a torchvision classification
  network as the encoder. `BackboneUNet` takes the backbone's feature maps at strides 2, 4, 8,
  16 and 32 as the skips and the bottleneck, and climbs back with the course's `Up` blocks:

      images ─ stem (1/2) ─────────────────────────────── Up ─ OutConv ─ x2 ─ logits
                 └─ stage (1/4) ─────────────────── Up ─┘
                      └─ stage (1/8) ─────── Up ─┘
                           └─ stage (1/16) ─ Up ─┘
                                └─ stage (1/32) ┘

- `fcn-resnet50`, `deeplabv3-mobilenetv3`, `lraspp-mobilenetv3`: torchvision's segmentation
  models (FCN: one upsampling of the 1/8 features, no decoder; DeepLabV3: dilated convolutions
  and ASPP; LR-ASPP: a light head over 1/8 and 1/16), wrapped by `TorchvisionSegmenter`.

Every model obeys the `UNet` contract, so `fit`, the losses, metrics, checkpoints and prediction
need not know which one they hold: `forward` returns logits `(N, C, H, W)` at the input size;
with `deep_supervision=True` in training mode it returns `(logits, aux)`, the auxiliary
logits for `DeepSupervisionLoss`. Each model has `name`, `num_classes`, `deep_supervision`,
`size_multiple` and `encoder_parameters()` (what `TrainConfig.freeze_encoder_epochs` freezes
and `encoder_lr_factor` slows down). Weights are never downloaded unless `pretrained` asks
(`segtutor.pretrained`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v3_large, resnet18
from torchvision.models import segmentation as tv_segmentation

from segtutor.model import PRESETS, OutConv, UNet, Up, build_unet
from segtutor.pretrained import IMAGENET_WEIGHTS, loading_weights

__all__ = [
    "MODELS",
    "BackboneUNet",
    "Encoder",
    "TorchvisionSegmenter",
    "build_model",
    "encoder_parameters",
    "freeze_encoder",
    "model_config",
    "model_from_config",
    "use_pytorch_batchnorm_momentum",
]

MODELS: dict[str, str] = {
    "unet": "the course's U-Net (02_unet), sized by a preset; no pretrained weights",
    "unet-resnet18": "U-Net decoder (the course's Up blocks) over a ResNet-18 encoder",
    "unet-mobilenetv3": "U-Net decoder (the course's Up blocks) over a MobileNetV3-Large encoder",
    "fcn-resnet50": "torchvision FCN: ResNet-50 (dilated, 1/8) and one upsampling, no decoder",
    "deeplabv3-mobilenetv3": "torchvision DeepLabV3: MobileNetV3-Large, dilated, ASPP head",
    "lraspp-mobilenetv3": "torchvision LR-ASPP: MobileNetV3-Large, light head; no aux head",
}
"""Model name -> one line on what it is; the names `build_model` and `--model` take."""

# torchvision backbone each model starts from (the key of `segtutor.pretrained.IMAGENET_WEIGHTS`)
BACKBONES = {
    "unet-resnet18": "resnet18",
    "unet-mobilenetv3": "mobilenet_v3_large",
    "fcn-resnet50": "resnet50",
    "deeplabv3-mobilenetv3": "mobilenet_v3_large",
    "lraspp-mobilenetv3": "mobilenet_v3_large",
}


class Encoder(nn.Module):
    """A backbone cut into stages; returns the feature map after each (strides 2, 4, .., 32).

    Introduced in `08_relatives.ipynb`.

    Shape:
        images: (N, 3, H, W) with H, W multiples of 32
        -> [(N, channels[k], H / 2**(k+1), W / 2**(k+1)) for k in 0..4]
    """

    def __init__(self, stages: list[nn.Module], channels: list[int]):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.channels = list(channels)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = images
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def resnet18_encoder(weights: Any = None) -> Encoder:
    """ResNet-18 as an `Encoder`: the stem (conv, BN, ReLU) at 1/2, then layer1..4 at 1/4..1/32."""
    net = resnet18(weights=weights)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu)
    stages = [stem, nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4]
    return Encoder(stages, [64, 64, 128, 256, 512])


def mobilenetv3_encoder(weights: Any = None) -> Encoder:
    """MobileNetV3-Large's `features` cut where the stride doubles (the last 1x1 conv dropped)."""
    features = mobilenet_v3_large(weights=weights).features
    # blocks 0-1 at 1/2 (16 ch), 2-3 at 1/4 (24), 4-6 at 1/8 (40), 7-12 at 1/16 (112),
    # 13-15 at 1/32 (160); block 16 (160 -> 960 channels, 1x1) serves the classifier only
    cuts = [(0, 2), (2, 4), (4, 7), (7, 13), (13, 16)]
    stages = [features[a:b] for a, b in cuts]
    return Encoder(stages, [16, 24, 40, 112, 160])


class BackboneUNet(nn.Module):
    """The U-Net figure over a pretrained-able `Encoder`: the course's `Up` blocks as decoder.

    Introduced in `08_relatives.ipynb`.

    Each `Up` upsamples (bilinear), concatenates the encoder's map of the same size (the skip)
    and gives as many channels as that skip has, as in the course U-Net. The last `Up` ends at
    1/2 of the input (the encoder's first map); the logits are upsampled x2 to the input size.
    Any input size works: the images are zero-padded to a multiple of 32 and the logits cropped.

    Args:
        encoder: feature maps at strides 2..32 (`Encoder`).
        num_classes: output channels.
        deep_supervision: a 1x1 head after every `Up` but the last (1/16, 1/8, 1/4 of the
            input); in training mode `forward` then returns `(logits, aux)` like `UNet`.
        name: the `MODELS` name, recorded in checkpoints.

    Shape:
        images: (N, 3, H, W) -> logits: (N, num_classes, H, W)
    """

    size_multiple = 32
    in_channels = 3

    def __init__(
        self, encoder: Encoder, num_classes: int, deep_supervision: bool = False, name: str = ""
    ):
        super().__init__()
        self.name = name
        self.num_classes = num_classes
        self.deep_supervision = deep_supervision
        self.encoder = encoder
        widths = encoder.channels  # (1/2, 1/4, 1/8, 1/16, 1/32)
        below = widths[-1]
        ups = []
        for skip in reversed(widths[:-1]):  # 1/16, 1/8, 1/4, 1/2
            ups.append(Up(below + skip, skip, bilinear=True))
            below = skip
        self.ups = nn.ModuleList(ups)
        self.outc = OutConv(widths[0], num_classes)
        self.aux_heads = nn.ModuleList(
            OutConv(up.out_channels, num_classes) for up in (ups[:-1] if deep_supervision else [])
        )

    def forward(
        self, images: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        height, width = images.shape[-2:]
        # pad silently to a multiple of 32 (the encoder's stride) and crop the logits back
        x = F.pad(images, [0, -width % 32, 0, -height % 32])
        features = self.encoder(x)  # [1/2, 1/4, 1/8, 1/16, 1/32]
        x = features.pop()
        aux = []
        for level, up in enumerate(self.ups):
            x = up(x, features.pop())
            if self.training and level < len(self.aux_heads):
                scale = 2 ** (len(self.ups) - level)  # 16, 8, 4
                coarse = self.aux_heads[level](x)
                aux.append(coarse[..., : -(-height // scale), : -(-width // scale)])
        logits = F.interpolate(self.outc(x), scale_factor=2, mode="bilinear", align_corners=False)
        logits = logits[..., :height, :width]  # (N, num_classes, H, W)
        return (logits, aux) if aux else logits

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The backbone's parameters (frozen first / slower lr in transfer learning)."""
        return list(self.encoder.parameters())


class TorchvisionSegmenter(nn.Module):
    """A `torchvision.models.segmentation` model behind `UNet`'s output contract.

    Introduced in `08_relatives.ipynb`. torchvision's models return a dict, `{"out": logits}`
    plus `"aux"` (a second head on an earlier stage) when built with `aux_loss=True`; this
    wrapper is the one place that turns it into logits, or `(logits, [aux])` in training mode,
    which `fit` trains with `DeepSupervisionLoss` as it does a deep-supervised U-Net.

    Shape:
        images: (N, 3, H, W) -> logits: (N, num_classes, H, W) (torchvision upsamples to H, W)
    """

    size_multiple = 1  # torchvision's heads resize their output to the input's size
    in_channels = 3

    def __init__(self, net: nn.Module, name: str, num_classes: int, deep_supervision: bool):
        super().__init__()
        self.net = net
        self.name = name
        self.num_classes = num_classes
        self.deep_supervision = deep_supervision

    def forward(
        self, images: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        outputs = self.net(images)  # {"out": (N, C, H, W)[, "aux": (N, C, H, W)]}
        if self.training and self.deep_supervision:
            return outputs["out"], [outputs["aux"]]
        return outputs["out"]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The backbone's parameters (frozen first / slower lr in transfer learning)."""
        return list(self.net.backbone.parameters())


def build_model(
    name: str = "unet",
    num_classes: int = 2,
    *,
    preset: str = "course",
    deep_supervision: bool = False,
    pretrained: str | None = None,
    decoder_convs: int = 2,
) -> nn.Module:
    """The model `name` (a key of `MODELS`), untrained unless `pretrained="imagenet"`.

    Introduced in `08_relatives.ipynb`.

    Args:
        name: a key of `MODELS`.
        num_classes: output channels (classes, background included).
        preset: the size of `unet` (a key of `segtutor.model.PRESETS`); the other models have
            one size each.
        deep_supervision: train auxiliary heads too: the coarser decoder levels of the U-Nets,
            torchvision's `aux_classifier` for FCN and DeepLabV3 (LR-ASPP has none: ignored).
        pretrained: None (random weights, nothing downloaded) or "imagenet": the backbone
            starts from torchvision's ImageNet weights (`segtutor.pretrained`); the decoder or
            head is always new.
        decoder_convs: 3x3 convolutions per decoder level of `unet` (2, the paper's, or 1);
            the other models have their own decoders.

    Every BatchNorm keeps its running statistics with PyTorch's default momentum, 0.1 (the
    statistics eval mode uses), also where torchvision chose 0.01.

    Raises:
        ValueError: an unknown name, preset or `pretrained`.
        PretrainedWeightsError: the ImageNet weights are not cached and cannot be downloaded.

    Example:
        >>> model = build_model("unet-resnet18", num_classes=4)
        >>> model.eval()(torch.zeros(1, 3, 70, 90)).shape
        torch.Size([1, 4, 70, 90])
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if pretrained not in (None, "imagenet"):
        raise ValueError(f"unknown pretrained weights {pretrained!r}; use None or 'imagenet'")
    if name == "unet":
        if pretrained is not None:
            raise ValueError(
                "the course's U-Net has no pretrained weights; choose unet-resnet18 or "
                "unet-mobilenetv3 for an ImageNet encoder"
            )
        return build_unet(
            preset, num_classes, deep_supervision=deep_supervision, decoder_convs=decoder_convs
        )
    if preset != "course":
        raise ValueError(f"presets ({', '.join(PRESETS)}) size the unet only; {name} has one size")
    if decoder_convs != 2:
        raise ValueError(f"decoder_convs shapes the unet's decoder only; {name} has its own")
    weights = IMAGENET_WEIGHTS[BACKBONES[name]] if pretrained else None
    with loading_weights(weights) if weights is not None else nullcontext():
        if name.startswith("unet-"):
            encoder = (resnet18_encoder if name == "unet-resnet18" else mobilenetv3_encoder)(
                weights
            )
            model = BackboneUNet(encoder, num_classes, deep_supervision, name=name)
        else:
            model = _torchvision_model(name, num_classes, deep_supervision, weights)
    return use_pytorch_batchnorm_momentum(model)


def use_pytorch_batchnorm_momentum(model: nn.Module) -> nn.Module:
    """Set every BatchNorm of `model` to PyTorch's default momentum, 0.1; return `model`.

    torchvision's MobileNetV3 updates its BatchNorms' running statistics with momentum 0.01,
    made for ImageNet's long training. From random weights its depthwise convolutions give
    outputs of variance far below the running variance's starting value of 1, so for about a
    thousand steps eval mode divides them by the wrong scale and DeepLabV3 predicts background
    everywhere (docs/benchmarks.md). PyTorch's default, 0.1, catches up ten times sooner,
    within the course's budgets.

    Introduced in `08_relatives.ipynb`.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    return model


def _torchvision_model(
    name: str, num_classes: int, deep_supervision: bool, weights: Any
) -> TorchvisionSegmenter:
    # weights=None always: torchvision's whole-model weights are for VOC/COCO's 21 classes;
    # weights_backbone=None unless asked (torchvision's default would download silently)
    common = dict(weights=None, weights_backbone=weights, num_classes=num_classes)
    if name == "fcn-resnet50":
        net = tv_segmentation.fcn_resnet50(aux_loss=deep_supervision, **common)
    elif name == "deeplabv3-mobilenetv3":
        net = tv_segmentation.deeplabv3_mobilenet_v3_large(aux_loss=deep_supervision, **common)
    else:  # lraspp-mobilenetv3: no auxiliary head to supervise
        net = tv_segmentation.lraspp_mobilenet_v3_large(**common)
        deep_supervision = False
    return TorchvisionSegmenter(net, name, num_classes, deep_supervision)


def encoder_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of `model`'s encoder (the course UNet's: `inc` and `downs`).

    Introduced in `08_relatives.ipynb`. Asks the model's own `encoder_parameters()` (looking
    through `DistributedDataParallel`'s `.module` and `torch.compile`'s `._orig_mod`).

    Raises:
        ValueError: the model does not say which parameters are its encoder.
    """
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    if not hasattr(model, "encoder_parameters"):
        raise ValueError(
            f"{type(model).__name__} has no encoder_parameters() method: cannot tell its encoder "
            "from its decoder (needed by freeze_encoder_epochs and encoder_lr_factor)"
        )
    return list(model.encoder_parameters())


def freeze_encoder(model: nn.Module, frozen: bool = True) -> None:
    """Stop (or restart) training the encoder: its parameters' `requires_grad = not frozen`.

    Introduced in `08_relatives.ipynb`; `segtutor.train.fit` calls it before each epoch when
    `TrainConfig.freeze_encoder_epochs` is set. A frozen parameter gets no gradient, so the
    optimizer leaves it (and its weight decay) alone; BatchNorm statistics still adapt.
    """
    for parameter in encoder_parameters(model):
        parameter.requires_grad_(not frozen)


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """How to rebuild `model` (plain data for a checkpoint), or None for a model not from here.

    Introduced in `08_relatives.ipynb`. A `UNet` gives its constructor's arguments as before,
    plus `"name": "unet"`; the others their `name`, `num_classes` and `deep_supervision`.
    """
    if isinstance(model, UNet):
        keys = ("in_channels", "num_classes", "base_width", "depth", "bilinear", "decoder_convs")
        config = {"name": "unet", **{key: int(getattr(model, key)) for key in keys}}
        config["bilinear"] = bool(model.bilinear)
        return {**config, "deep_supervision": bool(model.deep_supervision)}
    if isinstance(model, (BackboneUNet, TorchvisionSegmenter)):
        return {
            "name": model.name,
            "num_classes": int(model.num_classes),
            "deep_supervision": bool(model.deep_supervision),
        }
    return None


def model_from_config(config: Mapping[str, Any]) -> nn.Module:
    """The untrained model `model_config` described (no `"name"`: a `UNet`, as in old checkpoints).

    Introduced in `08_relatives.ipynb`. Never downloads: the weights come from the checkpoint.
    """
    config = dict(config)
    name = config.pop("name", "unet")
    if name == "unet":
        return UNet(**config)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (choose one of {', '.join(MODELS)})")
    return build_model(name, **config)
