"""Download a famous dataset into a folder, where torchvision can; else say where to get it.

`python -m segtutor download NAME DIR` fetches Pascal VOC 2012 (`voc`) or Oxford-IIIT Pet
(`pets`) with `torchvision.datasets` (`segtutor.torchvision_data.download`) into `DIR`, and
prints what to pass to `--data`. Cityscapes needs a login, CamVid and ADE20K are not in
torchvision: for them it prints where to get the files and where to put them. Exit code 0 when
`DIR` holds the whole dataset afterwards, 2 when it does not. Introduced in `01_data.ipynb`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from segtutor.layouts import LAYOUTS
from segtutor.torchvision_data import DOWNLOADS, download, is_complete

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `download` arguments to `parser`. Introduced in `01_data.ipynb`."""
    automatic = [n for n, d in DOWNLOADS.items() if not d.manual]
    parser.add_argument("name", metavar="NAME", choices=list(DOWNLOADS),
                        help=f"the dataset: {', '.join(DOWNLOADS)} ({' and '.join(automatic)} "
                        "are downloaded; the others need a step by hand, which is printed)")  # fmt: skip
    parser.add_argument("dir", metavar="DIR", type=Path,
                        help="the folder to download into (created if needed); a second run "
                        "keeps what the first one finished")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Download (or explain how to get) `args.name` into `args.dir`; 0 once it is there.

    Introduced in `01_data.ipynb`. A failed download raises `DataError` (exit 2).
    """
    source, title = DOWNLOADS[args.name], LAYOUTS[args.name].title
    directory = args.dir.expanduser()
    if is_complete(args.name, directory):
        print(f"{title} is already complete in {directory / source.folder}")
    elif source.manual:
        print(f"{title} cannot be downloaded automatically.\n"
              f"  where: {source.source} (about {source.size}; read its licence there)\n"
              f"  then:  {source.manual.replace('DIR', str(directory))}")  # fmt: skip
        return 2
    else:
        print(f"downloading {title} (about {source.size}; {source.source}) into {directory}:"
              f" the archives stay there (delete them once unpacked), the dataset lands in "
              f"{directory / source.folder}")  # fmt: skip
        download(args.name, directory)
    root = directory / source.folder
    print(f"next: python -m segtutor check-data {root}\n"
          f"      python -m segtutor train --data {root}")  # fmt: skip
    return 0
