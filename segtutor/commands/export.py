"""Export a checkpoint's model to ONNX or TorchScript, for use without segtutor.

`python -m segtutor export --checkpoint runs/best.pt --format onnx` writes `runs/best.onnx`: any
height and width, eval mode, the class names, palette, working scale and normalisation inside
it (TorchScript: in a `.json` file beside it). `python -m segtutor.deploy` runs the ONNX file
with numpy, Pillow and onnxruntime only. ONNX needs the optional packages of
`pip install "segtutor[export]"`.
Introduced in `06_visualisation.ipynb` (where `segtutor.export` is).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segtutor.commands.common import add_checkpoint_argument
from segtutor.export import EXPORT_FORMATS, export_model, sidecar_path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `export` arguments to `parser`. Introduced in `06_visualisation.ipynb`."""
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        required=True,
        help="onnx (for onnxruntime, segtutor.deploy) or torchscript (for libtorch)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="the file to write (default: beside the checkpoint, .onnx or .torchscript.pt)",
    )


def run(args: argparse.Namespace) -> int:
    """Export; print where the file went. Introduced in `06_visualisation.ipynb`."""
    try:
        path = export_model(args.checkpoint, args.format, args.output)
    except ImportError as error:
        print(
            f"error: exporting to {args.format} needs the package '{error.name}', which is not "
            'installed. Install the export extras: pip install "segtutor[export]"',
            file=sys.stderr,
        )
        return 2
    print(f"wrote {path}")
    if args.format == "torchscript":
        print(f"wrote {sidecar_path(path)} (class names, palette, working scale, normalisation)")
    else:
        print(f"run it without PyTorch: python -m segtutor.deploy {path} IMAGES... --output DIR")
    return 0
