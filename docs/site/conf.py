"""Sphinx settings of the course website; `python docs/build_site.py` builds it (see there)."""

project = "segtutor"
author = "the segtutor authors"
copyright = "the segtutor authors, MIT licence"

extensions = ["myst_nb"]
# Render the outputs stored in the notebooks; never run a kernel.
nb_execution_mode = "off"
# Widgets show the static picture their output stores: no widget scripts from a CDN.
nb_ipywidgets_js = {}
# Headings down to ### get anchors, so links like index.md#course-map work.
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "furo"  # its CSS and scripts ship in the package: the site works offline
html_title = "segtutor: semantic segmentation with PyTorch"
html_show_sourcelink = False
html_copy_source = False
