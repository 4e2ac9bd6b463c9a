"""Numbers in the notebooks' prose come from their outputs: a habit checked on every notebook.

The convention (DEVELOPERS.md, Notebooks): a measured number quoted in a markdown cell is written
in bold, `**0.903**`, `**10.3k**`, `**100%**`, and must be shown by the stored output of a code
cell above it, at the precision the prose gives (`**0.90**` matches a printed 0.903; `**10.3k**`
a printed 10,312 or 10.3k; `**56%**` a printed 56.2%, a percentage only by a percentage).
Numbers that are not measurements (a constant, a count the prose defines) are not bold. The
test reads the stored notebooks (full-mode outputs) and runs nothing, so it takes a moment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parent.parent / "solutions").glob("[0-9][0-9]_*.ipynb")
)
SCALES = {"": 1, "k": 1e3, "M": 1e6}
# a claim: bold text that is one number, maybe with a scale (k, M) or a percent sign
CLAIM = re.compile(r"\*\*([-+]?\d[\d,]*(?:\.\d+)?)(k|M|%)?\*\*")
# a number in an output: thousands separators allowed, a scale or percent sign kept
PRINTED = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(k|M|%)?")


def claims(markdown: str) -> list[tuple[str, str]]:
    """The bold numbers of a markdown cell: (digits as written, unit '' / 'k' / 'M' / '%')."""
    return [(digits, unit or "") for digits, unit in CLAIM.findall(markdown)]


def printed_numbers(text: str) -> list[tuple[float, str]]:
    """Every number in an output's text, with its unit ('' / 'k' / 'M' / '%')."""
    found = []
    for match in PRINTED.finditer(text):
        unit = match.group(1) or ""
        number = match.group(0)[: len(match.group(0)) - len(unit)].replace(",", "")
        try:
            found.append((float(number), unit))
        except ValueError:  # "1,2," and the like: not a number
            continue
    return found


def shows(digits: str, unit: str, printed: list[tuple[float, str]]) -> bool:
    """Whether a printed number rounds to the claim at the claim's precision."""
    written = digits.replace(",", "")
    decimals = len(written.split(".")[1]) if "." in written else 0
    for value, printed_unit in printed:
        if (unit == "%") != (printed_unit == "%"):
            continue
        scaled = value * SCALES.get(printed_unit, 1) / SCALES.get(unit, 1)
        if f"{scaled:.{decimals}f}" == f"{float(written):.{decimals}f}":
            return True
    return False


def output_text(cell: dict) -> str:
    """The text a code cell's stored outputs show (streams, plain-text results, errors)."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


def unshown_claims(cells: list[dict]) -> list[str]:
    """'cell N: **X**' for every bold number that no output above its cell shows."""
    printed, missing = [], []
    for index, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            printed += printed_numbers(output_text(cell))
        elif cell["cell_type"] == "markdown":
            for digits, unit in claims(source):
                if not shows(digits, unit, printed):
                    missing.append(f"cell {index}: **{digits}{unit}**")
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_numbers_in_prose_are_shown_by_an_output_above(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    missing = unshown_claims(cells)
    assert not missing, (
        f"{path.name}: these bold numbers are not shown by any output above them (re-executed "
        "notebook with other numbers? quote the new ones, or print the number in a cell):\n"
        + "\n".join(missing)
    )


def test_the_check_can_fail():
    def code(text):
        return {
            "cell_type": "code",
            "source": "",
            "outputs": [{"output_type": "stream", "text": text}],
        }

    def markdown(text):
        return {"cell_type": "markdown", "source": text}

    cells = [
        markdown("before any output: **0.9**"),
        code("best val mIoU 0.903 at epoch 18; background -> bar 10,312 px; lost 56.2%\n"),
        markdown("**0.903**, **0.90**, **10.3k**, **56%**, **18**, not bold: 0.5"),
        markdown("stale: **0.907**; a share is no percentage: **0.56%**; **56**"),
    ]
    assert unshown_claims(cells) == [
        "cell 0: **0.9**",
        "cell 3: **0.907**",
        "cell 3: **0.56%**",
        "cell 3: **56**",
    ]
