"""Write a chapter notebook from a list of cells (used to author notebooks/ consistently).

Usage from Python::

    from tools.notebook import write_notebook, md, code
    write_notebook("notebooks/01_getting_started.ipynb", [md("# Title"), code("print(1)")])

Notebooks are written without outputs; the book build and nbval execute them.
"""

from __future__ import annotations

import nbformat

SETUP = '''\
# Setup: on Colab, install rawdrift (Colab's own torch is kept); elsewhere the local install is used.
import os, sys
if "google.colab" in sys.modules:
    get_ipython().run_line_magic("pip", "install -q 'rawdrift @ git+https://github.com/rawdrift/rawdrift'")
import rawdrift
from rawdrift.device import pick_device
from rawdrift.presets import get_preset

PRESET = os.environ.get("RAWDRIFT_PRESET", "lab")
preset = get_preset(PRESET)
device = pick_device("auto")
print(f"rawdrift {rawdrift.__version__}, preset {PRESET!r}, device {device}")'''


def md(text: str, tags=()):
    cell = nbformat.v4.new_markdown_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def code(text: str, tags=()):
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def setup_cell():
    return code(SETUP)


def write_notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.write(nb, path)
