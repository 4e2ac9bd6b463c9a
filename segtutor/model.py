"""The U-Net (Ronneberger et al., 2015), built from four named parts.

Introduced in `02_unet.ipynb`. The parts follow the figure of the paper:

    images ─ DoubleConv ─────────────────────────────────────── Up ─ OutConv ─ logits
                 └─ Down ───────────────────────────────── Up ─┘
                      └─ Down ─────────────────────── Up ─┘
                           └─ Down ─────────── Up ─┘
                                └─ Down (bottleneck) ─┘

Each `Down` halves the height and width and doubles the channels; each `Up` doubles the height
and width, concatenates the encoder features of the same size (the skip connection) and halves
the channels. With `base_width=64, depth=4` the channels are 64, 128, 256, 512, 1024: the
full U-Net of the tutorial (31.0 M parameters). `PRESETS["course"]` has the same figure with
1/8 of the channels (0.49 M parameters), many times faster to train on a laptop CPU (the
measured speeds are in docs/benchmarks.md).

`UNet(deep_supervision=True)` adds a 1x1 head to every coarser `Up`, whose predictions are
trained too (see `UNet`); `python -m segtutor train` uses it by default.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "PRESETS",
    "DoubleConv",
    "Down",
    "OutConv",
    "UNet",
    "Up",
    "build_unet",
    "count_flops",
    "count_parameters",
]


class DoubleConv(nn.Module):
    """(conv 3x3 => BatchNorm => ReLU) * 2; keeps height and width.

    Introduced in `02_unet.ipynb`.
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None):
        super().__init__()
        mid_channels = mid_channels or out_channels
        # bias=False: the BatchNorm right after each conv has its own shift, a bias would be wasted
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)  # (N, in, H, W) -> (N, out, H, W)


class Down(nn.Module):
    """MaxPool 2x2 => DoubleConv; (N, in, H, W) -> (N, out, H // 2, W // 2).

    Introduced in `02_unet.ipynb`.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upsample x 2 => pad to the skip's size => concat [skip, x] => DoubleConv (or one conv).

    Introduced in `02_unet.ipynb`.

    Args:
        in_channels: channels after the concatenation (skip channels + upsampled channels).
        out_channels: channels of the output.
        bilinear: upsample with bilinear interpolation (no weights) instead of a learned
            transposed convolution. A bilinear `Up` expects `x` with `in_channels // 2` channels,
            a transposed one expects `in_channels` and halves them while upsampling.
        convs: 3x3 convolutions after the concatenation: 2 (the paper's `DoubleConv`) or 1
            (conv => BatchNorm => ReLU, the first half of it: a lighter decoder).

    Shape:
        x: (N, C_x, h, w), skip: (N, in_channels // 2, H, W) with H >= 2h, W >= 2w
        -> (N, out_channels, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = False, convs: int = 2):
        super().__init__()
        if convs not in (1, 2):
            raise ValueError(f"an Up block has 1 or 2 convolutions, got {convs}")
        self.out_channels = out_channels
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            mid_channels = in_channels // 2
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            mid_channels = None
        if convs == 2:
            self.conv = DoubleConv(in_channels, out_channels, mid_channels)
        else:  # DoubleConv's first half, straight to out_channels
            self.conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        # An odd size was floored by the MaxPool on the way down (e.g. 37 -> 18 -> 36), so the
        # upsampled x can be one row or column short of the skip: pad it, half on each side.
        diff_y = skip.size(2) - x.size(2)
        diff_x = skip.size(3) - x.size(3)
        x = F.pad(x, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    """1x1 conv: features to one score (logit) per class; (N, in, H, W) -> (N, C, H, W).

    Introduced in `02_unet.ipynb`.
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNet(nn.Module):
    """U-Net for semantic segmentation: images in, one logit per class and pixel out.

    Introduced in `02_unet.ipynb`.

    Args:
        in_channels: channels of the input images (3 for RGB).
        num_classes: number of classes, i.e. output channels.
        base_width: channels of the first `DoubleConv`; each `Down` doubles them.
        depth: number of `Down` (and `Up`) blocks. The input shrinks by `2 ** depth` at the
            bottleneck.
        bilinear: upsample with bilinear interpolation instead of transposed convolutions;
            as in the tutorial and milesial/Pytorch-UNet, the bottleneck and the decoder then
            have half the channels (about 17.3 M instead of 31.0 M parameters at full width).
        deep_supervision: add a 1x1 `OutConv` ("auxiliary head") after every `Up` but the
            last, so that the coarse decoder levels must predict the classes too (Lee et al.,
            2015; nnU-Net trains this way). In training mode `forward` then returns
            `(logits, aux)`, `aux` the list of coarser logits from the deepest level up, each at
            its own resolution (1/8, 1/4, 1/2 of the input at depth 4), for
            `segtutor.losses.DeepSupervisionLoss` (`fit` wraps its loss in one by itself); in
            eval mode it returns the logits alone, so evaluation and prediction do not change.
        decoder_convs: 3x3 convolutions in each `Up` block: 2 as in the paper, or 1 for a
            decoder with half the convolutions (see `Up`).

    Any input size works: when H or W is not a multiple of `size_multiple` (= `2 ** depth`),
    the images are zero-padded at the bottom and right up to the next multiple and the logits
    are cropped back to (H, W). The first time a model pads it says so with a `UserWarning`;
    resize or crop your images to a multiple of `size_multiple` to avoid the extra work.

    Shape:
        images: (N, in_channels, H, W) -> logits: (N, num_classes, H, W)

    Example:
        >>> model = UNet(num_classes=4, base_width=8)
        >>> model(torch.randn(2, 3, 128, 128)).shape
        torch.Size([2, 4, 128, 128])
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base_width: int = 64,
        depth: int = 4,
        bilinear: bool = False,
        deep_supervision: bool = False,
        decoder_convs: int = 2,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.base_width = base_width
        self.depth = depth
        self.bilinear = bilinear
        self.deep_supervision = deep_supervision
        self.decoder_convs = decoder_convs
        self.size_multiple = 2**depth
        self.name = "unet"  # the name `segtutor.architectures.build_model` knows it by
        self._warned_padding = False

        widths = [base_width * 2**i for i in range(depth + 1)]  # 64, 128, 256, 512, 1024
        # Bilinear upsampling keeps the channels, so the layer below a skip must already deliver
        # half of the concatenation: the bottleneck and every Up but the last are halved.
        factor = 2 if bilinear else 1

        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(
            Down(widths[i], widths[i + 1] // (factor if i == depth - 1 else 1))
            for i in range(depth)
        )
        self.ups = nn.ModuleList(
            Up(widths[i], widths[i - 1] // (factor if i > 1 else 1), bilinear, decoder_convs)
            for i in range(depth, 0, -1)
        )
        self.outc = OutConv(widths[0], num_classes)
        # One head per coarser decoder level (1/8, 1/4, 1/2 of the input size at depth 4):
        # a few hundred weights, unused at prediction time.
        self.aux_heads = nn.ModuleList(
            OutConv(up.out_channels, num_classes)
            for up in (self.ups[:-1] if deep_supervision else [])
        )

    def forward(
        self, images: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        height, width = images.shape[-2:]
        x = self._pad_to_multiple(images)

        # Encoder (left side of the figure). With depth 4, features = [x1, x2, x3, x4, x5].
        features = [self.inc(x)]
        for down in self.downs:
            features.append(down(features[-1]))

        # Decoder (right side): up1(x5, x4), up2(x, x3), up3(x, x2), up4(x, x1).
        x = features.pop()
        aux = []
        for level, up in enumerate(self.ups):
            x = up(x, features.pop())
            if self.training and level < len(self.aux_heads):
                # coarse logits at 1/2**k of the size: the loss shrinks the masks to match
                # (cheaper than upsampling the logits to full size; nnU-Net does the same)
                scale = 2 ** (self.depth - 1 - level)
                coarse = self.aux_heads[level](x)
                aux.append(coarse[..., : -(-height // scale), : -(-width // scale)])

        logits = self.outc(x)[..., :height, :width]  # (N, num_classes, H, W)
        # with deep supervision, in training mode only: (logits, coarser logits for the loss)
        return (logits, aux) if aux else logits

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The encoder's parameters, `inc` and the `downs` (the left side of the figure).

        What `TrainConfig.freeze_encoder_epochs` freezes and `encoder_lr_factor` slows down when
        a U-Net starts from another run's weights (`08_relatives.ipynb`).
        """
        return [*self.inc.parameters(), *self.downs.parameters()]

    def _pad_to_multiple(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h = -height % self.size_multiple
        pad_w = -width % self.size_multiple
        if pad_h == 0 and pad_w == 0:
            return images
        if not self._warned_padding:
            self._warned_padding = True
            warnings.warn(
                f"UNet(depth={self.depth}) needs H and W divisible by {self.size_multiple}; "
                f"padding {height}x{width} images to {height + pad_h}x{width + pad_w} and cropping "
                f"the logits back (said once per model).",
                UserWarning,
                stacklevel=2,
            )
        # Zeros: after normalisation with the dataset mean, 0 is an average-looking pixel.
        return F.pad(images, [0, pad_w, 0, pad_h])


PRESETS: dict[str, dict] = {
    # The tutorial's U-Net: 64..1024 channels, 31.0 M parameters, 24 GFLOPs per 128x128 image;
    # too slow to train on a CPU in a notebook's time.
    "full": dict(base_width=64, depth=4, bilinear=False),
    # The course default: the same figure with 1/8 of the channels (8..128), 0.49 M parameters,
    # 0.38 GFLOPs per image. On the bundled scenes wider presets learned no faster per second
    # of CPU: they see fewer images; with more than 8 classes "wide" did (docs/benchmarks.md).
    "course": dict(base_width=8, depth=4, bilinear=False),
    # 1.5x the course's channels (12..192), 1.1 M parameters: what the recipe picks for more
    # classes than the course U-Net's last layer has channels (`segtutor.recipe.choose_preset`).
    "wide": dict(base_width=12, depth=4, bilinear=False),
    # One level less (8..64 channels): 0.12 M parameters, a little faster; for quick checks.
    "tiny": dict(base_width=8, depth=3, bilinear=False),
}
"""Named U-Net sizes for `build_unet`; see the module docstring for what each costs."""


def build_unet(
    preset: str = "course",
    num_classes: int = 2,
    in_channels: int = 3,
    *,
    deep_supervision: bool = False,
    decoder_convs: int = 2,
) -> UNet:
    """A `UNet` of a named size from `PRESETS` ("full", "course", "wide" or "tiny").

    Introduced in `02_unet.ipynb`.

    Example:
        >>> model = build_unet("course", num_classes=4)
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    return UNet(
        in_channels=in_channels,
        num_classes=num_classes,
        deep_supervision=deep_supervision,
        decoder_convs=decoder_convs,
        **PRESETS[preset],
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted).

    Introduced in `02_unet.ipynb`.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 128, 128)) -> int:
    """Floating-point operations of one forward pass, counted by torch's `FlopCounterMode`.

    Introduced in `02_unet.ipynb`.

    A multiply-add counts as 2 FLOPs. Only the matrix-like operations (convolutions, linear
    layers) are counted; BatchNorm, ReLU and pooling are cheap next to them. Backward costs
    about twice the forward, so one training step is about 3x this number.
    """
    parameter = next(model.parameters())
    images = torch.zeros(input_size, dtype=parameter.dtype, device=parameter.device)
    was_training = model.training
    model.eval()  # no BatchNorm statistics update; same FLOPs as training mode
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images)
    finally:
        model.train(was_training)
    return counter.get_total_flops()
