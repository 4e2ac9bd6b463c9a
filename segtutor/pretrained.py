"""ImageNet weights for a backbone, through torchvision's own weights API, and what to do offline.

Introduced in `08_relatives.ipynb`. `segtutor.architectures.build_model(...,
pretrained="imagenet")` asks torchvision for the weights named in `IMAGENET_WEIGHTS`;
torchvision looks for the file in its cache, `$TORCH_HOME/hub/checkpoints/` (by default
`~/.cache/torch/hub/checkpoints/`), and downloads it there when it is missing. Nothing else in
segtutor ever downloads weights: every model is built with `weights=None` unless asked.

Offline, or when the download fails, `loading_weights` turns torchvision's error into a
`PretrainedWeightsError` that names the exact file, where to put it and the URL to fetch it
from on a machine that is online. The command line prints it and exits with code 2.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision.models import MobileNet_V3_Large_Weights, ResNet18_Weights, ResNet50_Weights
from torchvision.models._api import WeightsEnum

from segtutor.errors import DataError, Problem

__all__ = ["IMAGENET_WEIGHTS", "PretrainedWeightsError", "loading_weights", "weights_file"]

# backbone -> torchvision's ImageNet weights for it (the first published set of each)
IMAGENET_WEIGHTS: dict[str, WeightsEnum] = {
    "resnet18": ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": ResNet50_Weights.IMAGENET1K_V1,
    "mobilenet_v3_large": MobileNet_V3_Large_Weights.IMAGENET1K_V1,
}
"""Backbone name -> torchvision's ImageNet weights enum member that `pretrained="imagenet"` loads."""


class PretrainedWeightsError(DataError):
    """Pretrained weights could not be loaded: the message names the file, where and the URL.

    Introduced in `08_relatives.ipynb`. A `DataError`, so the command line prints it and exits
    with code 2, without a traceback.
    """


def weights_file(weights: WeightsEnum) -> Path:
    """Where torchvision looks for `weights`: `$TORCH_HOME/hub/checkpoints/<the URL's name>`.

    Introduced in `08_relatives.ipynb`.

    Example:
        >>> weights_file(IMAGENET_WEIGHTS["resnet18"]).name
        'resnet18-f37072fd.pth'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


@contextmanager
def loading_weights(weights: WeightsEnum) -> Iterator[None]:
    """Run a torchvision builder that loads `weights`; a failure becomes `PretrainedWeightsError`.

    Introduced in `08_relatives.ipynb`. A missing file that cannot be downloaded (offline, a
    proxy, a refused connection) and a damaged file both end here, with the path and the URL.
    """
    path = weights_file(weights)
    existed = path.is_file()
    try:
        yield
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as error:
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        if existed:
            message = f"the ImageNet weights file is there but cannot be loaded ({reason})"
            fix = (
                f"delete it and try again online, or download {weights.url} on another machine "
                f"and copy it to {path}"
            )
        else:
            message = f"ImageNet weights not found, and the download failed ({reason})"
            fix = (
                f"download {weights.url} (e.g. on a machine that is online) and put it at "
                f"{path} (set TORCH_HOME to use another cache folder), or train without "
                "--pretrained"
            )
        raise PretrainedWeightsError(Problem(path, message, fix)) from error
