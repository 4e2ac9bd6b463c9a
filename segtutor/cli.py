"""The command line: `python -m segtutor {check-data,train,evaluate,predict,export,make-samples,convert,download}`.

Introduced in `01_data.ipynb`, which runs `check-data` through `main`.

Each sub-command is one module of `segtutor.commands` (argparse and printing only) that exposes
two functions, `add_arguments(parser)` and `run(args) -> int`. This file only dispatches and
turns the errors a user can fix (`DataError`, `CheckpointError`) into one clear message and exit
code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from segtutor.errors import CheckpointError, DataError

__all__ = ["main"]

# command name -> (module that implements it, one-line help)
COMMANDS = {
    "check-data": (
        "segtutor.commands.check_data",
        "check a dataset folder and explain every problem",
    ),
    "train": ("segtutor.commands.train", "train a U-Net on an images/ + masks/ folder"),
    "evaluate": ("segtutor.commands.evaluate", "evaluate a checkpoint on a dataset"),
    "predict": ("segtutor.commands.predict", "write predicted masks for images"),
    "export": ("segtutor.commands.export", "export a model to ONNX or TorchScript"),
    "make-samples": ("segtutor.commands.make_samples", "regenerate the bundled sample datasets"),
    "convert": ("segtutor.commands.convert", "write a dataset out as images/ + masks/ folders"),
    "download": (
        "segtutor.commands.download",
        "download a famous dataset (or say where to get it)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segtutor",
        description="segtutor: semantic segmentation with a U-Net, from a folder of images and masks.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=module.__doc__.split("\n\n")[0])
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command line (`argv`, default `sys.argv[1:]`); return the exit code.

    Introduced in `01_data.ipynb` (`cli.main(["check-data", folder])`). 0 is success, 2 a
    problem the user can fix (the message is printed, no traceback), 130 an interrupt.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (DataError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
