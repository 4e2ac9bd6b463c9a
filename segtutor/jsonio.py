"""JSON for results: the one place where NaN becomes null, and files are written atomically.

Introduced in `04_training.ipynb` (a `History` saved as JSON). JSON has no NaN, yet NaN is how
segtutor says "not measured" (the IoU of a class seen nowhere): `json_ready` turns it into None
(`null`), along with the numpy and torch values that `json` cannot write. Its inverse, None back
to NaN, belongs to whoever reads the file (`History.from_dict`).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["json_ready", "write_json"]


def json_ready(value: Any) -> Any:
    """`value` as plain JSON data: NaN and infinities -> None, numpy and torch -> python.

    Numpy scalars become python numbers, numpy arrays and tensors become (nested) lists, tuples
    become lists, `Path`s become str and dict keys become str; everything else is unchanged.

    Introduced in `04_training.ipynb`.

    Example:
        >>> json_ready({"iou": [0.5, float("nan")], 1: np.float32(2.0)})
        {'iou': [0.5, None], '1': 2.0}
    """
    if isinstance(value, (np.ndarray, np.generic, torch.Tensor)):
        value = value.tolist()  # numpy and torch scalars become python numbers too
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [json_ready(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `json_ready(data)` to `path` atomically (a temporary file, then a rename).

    A crash while writing leaves the previous file intact, never half a file.

    Introduced in `04_training.ipynb`.

    Returns:
        The path written.
    """
    path = Path(path)
    text = json.dumps(json_ready(data), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new name in the same folder (a rename across file systems is not atomic), opened like
    # any new file so that it gets the usual permissions, unlike tempfile's owner-only ones.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
