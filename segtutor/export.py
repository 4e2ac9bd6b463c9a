"""Export a trained model to run outside segtutor: TorchScript or ONNX, any height and width.

Introduced in `06_visualisation.ipynb`. `export_model(checkpoint, "onnx")` writes `best.onnx`
beside the checkpoint, ready for `segtutor.deploy` (numpy + Pillow + onnxruntime, no torch).

Three things make an exported U-Net behave like the eager one:

- eval mode: BatchNorm uses its running statistics, and a deep-supervision model returns its
  final logits only (the auxiliary heads are not part of the graph);
- any height and width: the exporters record the operations one example runs, and the U-Net's
  "pad only when the size is not a multiple of 16" is a Python `if`, which they would freeze
  for the example's size. `AnySize` pads always, by an amount computed from the input's shape
  (zero for a multiple), and crops the logits back: shape arithmetic they do record;
- what the model expects: class names, palette, working scale and normalisation travel with
  it (ONNX: the file's `metadata_props`; TorchScript: a JSON file beside it, `sidecar_path`).

TorchScript is deprecated in recent PyTorch (ONNX is the format to ship); it is kept for C++
(libtorch) users. The ONNX export uses `torch.onnx.export(..., dynamo=True)`, which needs the
optional `onnx` and `onnxscript` packages (`pip install "segtutor[export]"`).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from segtutor.checkpoint import load_checkpoint, model_from_checkpoint
from segtutor.formats import voc_colormap
from segtutor.jsonio import write_json
from segtutor.settings import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "EXPORT_FORMATS",
    "AnySize",
    "export_metadata",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "sidecar_path",
]

EXPORT_FORMATS = ("onnx", "torchscript")
"""The formats `export_model` writes; file suffixes `.onnx` and `.torchscript.pt`."""

_SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
_MAX_SIDE = 16384  # the largest height or width the ONNX graph is declared for


class AnySize(nn.Module):
    """The model, padded to its size multiple by shape arithmetic an exporter records.

    Introduced in `06_visualisation.ipynb`. The same logits as `model(images)` in eval mode.

    Shape:
        images: (N, 3, H, W) -> logits: (N, C, H, W), any N, H, W.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()
        self.multiple = int(getattr(model, "size_multiple", 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        pad_h = (self.multiple - height % self.multiple) % self.multiple  # 0 for a multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        logits = self.model(F.pad(images, [0, pad_w, 0, pad_h]))  # (N, C, H + pad_h, W + pad_w)
        return logits[..., :height, :width]


def export_metadata(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """What a predictor needs besides the weights, from a loaded checkpoint.

    Introduced in `06_visualisation.ipynb`. Keys: `num_classes`, `class_names`, `palette` (Pascal
    VOC's colours when the checkpoint has none),
    `input_mode` ("crop": whole images at `working_scale`; "resize": resized to
    `input_size` squared), `input_size`, `working_scale`, `mean`, `std` (the normalisation of
    pixel values in [0, 1]), `source` ("segtutor").
    """
    model_config = checkpoint.get("model_config") or {}
    saved = checkpoint.get("config") or {}
    num_classes = int(model_config.get("num_classes") or 2)
    mode = saved.get("input_mode", "resize") or "crop"  # as segtutor.inference.Predictor reads it
    return {
        "source": "segtutor",
        "num_classes": num_classes,
        "class_names": checkpoint.get("class_names") or [f"class_{c}" for c in range(num_classes)],
        "palette": checkpoint.get("palette") or [list(c) for c in voc_colormap(num_classes)],
        "input_mode": mode,
        "input_size": int(saved.get("input_size") or 128) if mode == "resize" else None,
        "working_scale": float(saved.get("working_scale") or 1.0) if mode == "crop" else 1.0,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }


def _example(model: nn.Module, odd: bool) -> torch.Tensor:
    """An input for the exporters: a batch of 2 (they would fix a batch of 1 as a constant)."""
    multiple = int(getattr(model, "size_multiple", 1))
    height, width = (2 * multiple + 1, 2 * multiple + 3) if odd else (2 * multiple, 2 * multiple)
    parameter = next(model.parameters())
    return torch.rand((2, 3, height, width), dtype=parameter.dtype, device=parameter.device)


def _atomic_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON metadata file beside a TorchScript file: `model.torchscript.pt.json`.

    Introduced in `06_visualisation.ipynb`.
    """
    return Path(f"{path}.json")


def export_torchscript(model: nn.Module, path: str | os.PathLike, metadata: Mapping) -> Path:
    """Trace `AnySize(model)` to TorchScript at `path` (atomically), metadata in `sidecar_path`.

    Introduced in `06_visualisation.ipynb`. Load it with `torch.jit.load(path)` (in C++:
    `torch::jit::load`); it takes normalised images `(N, 3, H, W)` of any size.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _atomic_path(path)
    try:
        with warnings.catch_warnings():
            # the tracer warns of shape values turned into Python numbers and of TorchScript's
            # deprecation; AnySize's test (tests/test_export.py) checks the trace at many sizes
            warnings.simplefilter("ignore")
            # an odd size, so that the tracer records the padding with its general amounts
            traced = torch.jit.trace(AnySize(model), _example(model, odd=True), check_trace=False)
            torch.jit.save(traced, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    write_json(sidecar_path(path), dict(metadata))
    return path


def export_onnx(
    model: nn.Module, path: str | os.PathLike, metadata: Mapping, opset: int | None = None
) -> Path:
    """Export `AnySize(model)` to ONNX at `path` (atomically), metadata in `metadata_props`.

    Introduced in `06_visualisation.ipynb`. Input `images` `(N, 3, H, W)` float32, normalised;
    output `logits` `(N, C, H, W)`; N, H and W dynamic. Each metadata value is stored as JSON
    text (ONNX metadata holds strings): `json.loads(value)` reads it back.

    Raises:
        ImportError: `onnx` or `onnxscript` is not installed (`pip install "segtutor[export]"`).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = {
        "batch": torch.export.Dim("batch", min=1, max=1024),
        "height": torch.export.Dim("height", min=1, max=_MAX_SIDE),
        "width": torch.export.Dim("width", min=1, max=_MAX_SIDE),
    }
    tmp = _atomic_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on its own internals
            program = torch.onnx.export(
                AnySize(model),
                (_example(model, odd=False),),  # torch.export reasons symbolically
                dynamo=True,
                opset_version=opset,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes={"images": {0: side["batch"], 2: side["height"], 3: side["width"]}},
                verbose=False,
            )
        proto = program.model_proto
        onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in metadata.items()})
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_model(
    checkpoint: str | os.PathLike | Mapping[str, Any],
    format: str = "onnx",
    output: str | os.PathLike | None = None,
) -> Path:
    """Export the model of a checkpoint, in eval mode, with its metadata; returns the path.

    Introduced in `06_visualisation.ipynb`.

    Args:
        checkpoint: a checkpoint path (the default output sits beside it) or a loaded one.
        format: "onnx" or "torchscript".
        output: the file to write; default the checkpoint's path with `.onnx` or
            `.torchscript.pt` for `.pt`.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {format!r}")
    if output is None:
        if isinstance(checkpoint, Mapping):
            raise ValueError("pass output=... when the checkpoint is already loaded")
        output = Path(checkpoint).with_suffix(_SUFFIX[format])
    if not isinstance(checkpoint, Mapping):
        checkpoint = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint).cpu().eval()
    metadata = export_metadata(checkpoint)
    if format == "onnx":
        return export_onnx(model, output, metadata)
    return export_torchscript(model, output, metadata)
