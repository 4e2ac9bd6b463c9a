"""How an answer differs from the expected one, in one sentence a learner can act on.

Introduced in `01_data.ipynb`.

Each `compare_*` returns None when `got` matches `expected`, else one short explanation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["a_type", "compare_tensors", "compare_values", "describe", "same_value", "short"]


def compare_tensors(
    expected: torch.Tensor | np.ndarray,
    got: Any,
    name: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_numpy: bool = False,
) -> str | None:
    """Explain how tensor `got` differs from `expected` (type, shape, dtype, NaNs, values).

    Introduced in `01_data.ipynb`.

    Floating values match within `atol + rtol * |expected|`; integer and bool values exactly.
    With `allow_numpy`, a numpy array is accepted where a tensor is expected (and vice versa)
    and compared after conversion.

    Example:
        >>> compare_tensors(torch.zeros(2, 3), torch.zeros(3, 2))
        '`output` has shape (3, 2); expected (2, 3).'
    """
    want_type = "torch.Tensor" if isinstance(expected, torch.Tensor) else "numpy array"
    if not isinstance(got, torch.Tensor | np.ndarray):
        return f"`{name}` should be a {want_type}, but it is {a_type(got)}."
    if isinstance(got, torch.Tensor) != isinstance(expected, torch.Tensor) and not allow_numpy:
        fix = "torch.from_numpy(x)" if isinstance(expected, torch.Tensor) else "x.numpy()"
        return f"`{name}` should be a {want_type}, but it is {a_type(got)}; `{fix}` converts it."
    e, g = torch.as_tensor(expected).detach().cpu(), torch.as_tensor(got).detach().cpu()

    if e.shape != g.shape:
        msg = f"`{name}` has shape {tuple(g.shape)}; expected {tuple(e.shape)}."
        if e.numel() == g.numel():
            msg += " Same number of elements: a transpose, permute or reshape problem?"
        return msg
    if e.dtype != g.dtype:
        return f"`{name}` has dtype {g.dtype}; expected {e.dtype}."
    if e.is_floating_point():
        nan_mismatch = e.isnan() != g.isnan()
        if nan_mismatch.any():
            where = tuple(nan_mismatch.nonzero()[0].tolist())
            count = int(nan_mismatch.sum())
            return (
                f"`{name}` has NaN in the wrong place ({count} element(s)), e.g. at "
                f"{name}{_fmt_index(where)}: expected {_num(e[where])}, got {_num(g[where])}."
                + (" A division by zero (0 / 0)?" if g[where].isnan() else "")
            )
        bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        bad = g != e
    if not bad.any():
        return None
    if e.dim() == 0:
        return f"`{name}` is {_num(g)}; expected {_num(e)}."

    # Point at the worst element: one concrete number helps more than a summary statistic.
    if e.dtype == torch.bool:
        diff = bad.double()
    else:  # inf - inf is NaN; such an element is only here if it is wrong, so rank it first
        diff = torch.where(bad, (g.double() - e.double()).abs().nan_to_num(nan=math.inf), 0.0)
    where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), tuple(e.shape)))
    return (
        f"`{name}` differs at {int(bad.sum())} of {e.numel()} elements; the largest difference "
        f"is at {name}{_fmt_index(where)}: expected {_num(e[where])}, got {_num(g[where])}."
    )


def compare_values(
    expected: Any,
    got: Any,
    name: str = "output",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    allow_numpy: bool = False,
) -> str | None:
    """Explain how `got` differs from `expected`, for tensors, arrays, numbers and containers.

    Introduced in `01_data.ipynb`.

    Tensors and arrays go to `compare_tensors`. Python numbers accept a 0-d tensor or numpy
    scalar (learners often return `(mask == c).sum()`), but an `int` question refuses a float.
    Tuples, lists and dicts are compared element by element, naming the element (`output[1]`).
    """
    if isinstance(expected, torch.Tensor | np.ndarray):
        return compare_tensors(expected, got, name, atol, rtol, allow_numpy)
    if isinstance(expected, bool | int | float) and not isinstance(expected, np.generic):
        return _compare_numbers(expected, got, name, atol, rtol)
    if isinstance(expected, np.generic):
        return _compare_numbers(expected.item(), got, name, atol, rtol)
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"`{name}` should be a dict, but it is {a_type(got)}."
        if set(got) != set(expected):
            missing, extra = set(expected) - set(got), set(got) - set(expected)
            parts = [f"missing keys {sorted(map(repr, missing))}"] if missing else []
            parts += [f"unexpected keys {sorted(map(repr, extra))}"] if extra else []
            return f"`{name}` has {' and '.join(parts)}."
        for key in expected:
            if why := compare_values(
                expected[key], got[key], f"{name}[{key!r}]", atol, rtol, allow_numpy
            ):
                return why
        return None
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            return f"`{name}` should be a {type(expected).__name__}, but it is {a_type(got)}."
        if len(got) != len(expected):
            return f"`{name}` has {len(got)} elements; expected {len(expected)}."
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            if why := compare_values(e, g, f"{name}[{i}]", atol, rtol, allow_numpy):
                return why
        return None
    if type(got) is not type(expected) and not isinstance(got, type(expected)):
        return f"`{name}` should be {a_type(expected)}, but it is {a_type(got)}."
    return None if got == expected else f"`{name}` is {short(got)}; expected {short(expected)}."


def _compare_numbers(expected: float, got: Any, name: str, atol: float, rtol: float) -> str | None:
    if isinstance(got, torch.Tensor | np.ndarray) and got.ndim == 0 or isinstance(got, np.generic):
        got = got.item()
    if isinstance(expected, bool) != isinstance(got, bool) or not isinstance(got, int | float):
        return f"`{name}` should be {a_type(expected)}, but it is {a_type(got)}."
    if isinstance(expected, int) and isinstance(got, float):
        return f"`{name}` should be an int, but it is a float ({got!r}); `int(...)` converts it."
    if isinstance(expected, float) and math.isnan(expected) and math.isnan(got):
        return None
    if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
        return None
    return f"`{name}` is {got!r}; expected {expected!r}."


def same_value(expected: Any, got: Any, atol: float, rtol: float) -> bool:
    """True when `got` equals `expected` within `atol`/`rtol`, whatever the dtype or container
    (a tensor for a list, float32 for float64, a 1-element tensor for a number).

    Introduced in `01_data.ipynb`.
    """
    if isinstance(expected, Mapping):
        return (
            isinstance(got, Mapping)
            and expected.keys() == got.keys()
            and all(same_value(expected[k], got[k], atol, rtol) for k in expected)
        )
    if isinstance(expected, tuple | list):
        got = got.tolist() if isinstance(got, torch.Tensor | np.ndarray) else got
        return (
            isinstance(got, tuple | list)
            and len(got) == len(expected)
            and all(same_value(e, g, atol, rtol) for e, g in zip(expected, got, strict=True))
        )
    if not isinstance(expected, torch.Tensor | np.ndarray | bool | int | float | np.generic):
        return bool(expected == got)
    try:
        e = torch.as_tensor(expected).detach().cpu().double()
        g = torch.as_tensor(got).detach().cpu().double()
    except (TypeError, ValueError, RuntimeError):
        return False
    if e.dim() == 0 and g.numel() == 1:
        g = g.reshape(())
    return e.shape == g.shape and bool(
        torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True).all()
    )


def describe(value: Any, max_elements: int = 25) -> str:
    """A one-line description of an input: small tensors in full, large ones by shape and dtype.

    Introduced in `01_data.ipynb`.
    """
    if isinstance(value, torch.Tensor | np.ndarray):
        numel = value.size if isinstance(value, np.ndarray) else value.numel()
        if numel <= max_elements:
            return " ".join(repr(value).split())
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        return f"<{kind} of shape {tuple(value.shape)}, dtype {value.dtype}>"
    return short(value)


def short(value: Any, limit: int = 80) -> str:
    """`repr(value)` on one line, cut to `limit` characters: how messages quote a value.

    Introduced in `01_data.ipynb`.
    """
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def a_type(value: Any) -> str:
    """'a torch.Tensor', 'None', 'an int (3)': how messages name the type of a value.

    Introduced in `01_data.ipynb`.
    """
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return f"a torch.Tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    name = type(value).__name__
    article = "an" if name[0].lower() in "aeiou" else "a"
    return f"{article} {name} ({short(value, 40)})"


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, idx)) + "]" if idx else ""


def _num(x: torch.Tensor) -> str:
    value = x.item()
    return f"{value:.6g}" if isinstance(value, float) else repr(value)
