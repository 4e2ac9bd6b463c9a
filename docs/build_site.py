"""Build the course website from the student notebooks and their stored outputs, offline.

    python docs/build_site.py [--out site/]

Sphinx with myst-nb renders `notebooks/*.ipynb` (the student version: no worked answers, no
"Correct" verdicts) as they are stored: nothing is executed (`nb_execution_mode = "off"` in
`docs/site/conf.py`), and the furo theme ships its CSS and scripts, so the build reads no
network. The notebooks are never changed: a copy is prepared in `build/site-source/`, where

- test scaffolding is hidden: `assert` statements (the notebooks' checks of their own claims,
  with their quick-mode bounds) and `# NBVAL_...` markers are removed from the shown code; a
  cell left with no code shows only its output, or nothing;
- each notebook gets "Open in Colab" and "Launch Binder" links under its title (repository:
  `SITE_REPO` below, the one place to change when the repository moves);
- interactive widgets show the static picture they store for readers without a kernel;
- the links to the README's course map point at the site's front page, which is the README's
  introduction and course map.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where the course lives on GitHub: the Colab and Binder links of every page point here.
SITE_REPO = "https://github.com/segtutor/segtutor"
BRANCH = "main"
CONF = ROOT / "docs" / "site" / "conf.py"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
COURSE_MAP_LINK = re.compile(r"\]\(\.\./README\.md(#[\w-]+)?\)")


def launch_links(name: str, repo: str = SITE_REPO, branch: str = BRANCH) -> str:
    """The markdown line of "Open in Colab" and "Launch Binder" links for `notebooks/<name>`."""
    path = f"notebooks/{name}"
    slug = repo.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{slug}/blob/{branch}/{path}"
    binder = f"https://mybinder.org/v2/gh/{slug}/{branch}?labpath={path}"
    return f"[Open in Colab]({colab}) · [Launch Binder]({binder})"


def without_scaffolding(source: str) -> str:
    """`source` without its `assert` statements and `# NBVAL_` markers (other lines as they are).

    A cell that does not parse as Python (a magic, a shell line) loses only its markers.
    """
    lines = source.splitlines()
    drop = {i for i, line in enumerate(lines) if line.strip().startswith("# NBVAL_")}
    parsable = "\n".join("pass" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    try:
        tree = ast.parse(parsable)
    except SyntaxError:
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                drop.update(range(node.lineno - 1, node.end_lineno))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return "\n".join(kept).strip("\n")


def site_notebook(notebook: dict, name: str) -> dict:
    """The website's copy of one notebook (a new dict; see the module's docstring)."""
    notebook = json.loads(json.dumps(notebook))
    notebook["metadata"].pop("widgets", None)  # the widgets' state: only a kernel can use it
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            cell["source"] = COURSE_MAP_LINK.sub("](index.md)", source)
            continue
        if cell["cell_type"] != "code":
            continue
        shown = without_scaffolding(source)
        cell["source"] = shown
        if not shown.strip():
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            tags.append("remove-input" if cell.get("outputs") else "remove-cell")
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_MIME in data and len(data) > 1:
                del data[WIDGET_MIME]
    links = {"cell_type": "markdown", "id": "site-launch-links", "metadata": {},
             "source": launch_links(name)}  # fmt: skip
    notebook["cells"].insert(1, links)
    return notebook


def index_page(readme: str, names: list[str]) -> str:
    """The front page: the README's title and introduction, its course map, then the
    navigation to the notebook pages `names` (in course order)."""
    intro = readme.split("\n## ", 1)[0]
    intro = re.sub(r"!\[[^\]]*\]\([^)]*\)\n*", "", intro)  # its picture lives in the repository
    start = readme.index("## Course map")
    end = readme.index("\n## ", start + 1)
    course_map = re.sub(r"\]\(notebooks/(\d\d_\w+)\.ipynb\)", r"](\1.ipynb)", readme[start:end])
    toctree = "\n".join(["```{toctree}", ":hidden:", ":maxdepth: 1", "", *names, "```"])
    return f"{intro.strip()}\n\n{course_map.strip()}\n\n{toctree}\n"


def prepare_source(source: Path) -> list[str]:
    """Write the site's source folder (notebook copies, front page, conf.py); the page names."""
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    shutil.copy(CONF, source / "conf.py")
    names = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = site_notebook(json.loads(path.read_text("utf-8")), path.name)
        (source / path.name).write_text(json.dumps(notebook, indent=1), "utf-8")
        names.append(path.stem)
    readme = (ROOT / "README.md").read_text("utf-8")
    (source / "index.md").write_text(index_page(readme, names), "utf-8")
    return names


def build(out: Path, source: Path = ROOT / "build" / "site-source") -> float:
    """Build the website into `out`; returns the seconds it took. Sphinx's warnings are errors."""
    start = time.monotonic()
    prepare_source(source)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
               "-d", str(source.parent / "site-doctrees"), str(source), str(out)]  # fmt: skip
    subprocess.run(command, check=True)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="default: site/")
    args = parser.parse_args(argv)
    try:
        seconds = build(args.out)
    except subprocess.CalledProcessError as error:
        print(f"Sphinx failed (exit code {error.returncode}): see its messages above.")
        return 1
    print(f"Built {args.out / 'index.html'} in {seconds:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
