"""Author notebooks/01_getting_started.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/01_getting_started.ipynb",
    [
        md("""
# Getting started

This short chapter checks that your environment works and shows the knobs every later chapter
uses: the **preset** (how big the experiments are) and the **device** (CPU, CUDA or Apple MPS).

**Data:** this chapter loads no data. Unless a chapter says otherwise, every later result comes
from the **synthetic** raw datasets of chapter 02, not from the paper's real Raw-Microscopy and
Raw-Drone data; each chapter says so where its numbers appear.

**You will be able to**

- run the setup cell every chapter starts with (on Colab it installs `rawdrift`; everywhere it
  picks the GPU when there is one);
- choose a preset with the `RAWDRIFT_PRESET` environment variable and read what it sets.

| prerequisite | importance | where |
|---|---|---|
| Python and Jupyter notebooks | necessary | [Jupyter documentation](https://docs.jupyter.org/) |
| PyTorch basics (tensors, devices) | helpful | [PyTorch tutorials](https://pytorch.org/tutorials/) |

| preset | run time (2 CPU cores) |
|---|---|
| `ci` | seconds |
| `lab` | seconds |
| `paper` | seconds |

On Colab, pick a GPU runtime (*Runtime → Change runtime type*) before running the later chapters;
the setup cell then reports `device cuda`.
"""),
        setup_cell(),
        md("""
## Presets

Every experiment in `rawdrift` takes a config dataclass with a `preset` field. Fields you leave
empty are filled from the preset, so the same call runs in seconds in CI, in minutes in a course
lab, and at the paper's scale on a GPU.
"""),
        code("""
from dataclasses import asdict
from rawdrift.presets import PRESETS

for name, p in PRESETS.items():
    print(f"{name:>5}: size {p.size:3d}px, {p.n_microscopy:4d} microscopy / {p.n_drone:3d} drone patches, "
          f"{p.epochs:3d} epochs, {p.folds} folds")
"""),
        code("""
assert preset.name == PRESET
assert set(PRESETS) == {"ci", "lab", "paper"}
""", tags=["remove-cell"]),
        md("""
## What's next

The next chapters follow the data: from the raw sensor measurement, through the image signal
processing data model, to the three drift controls.
"""),
    ],
)
