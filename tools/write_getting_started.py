"""Author notebooks/01_getting_started.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/01_getting_started.ipynb",
    [
        md("""
# Getting started

This short chapter checks that your environment works and shows the knobs every later chapter
uses: the **preset** (how big the experiments are) and the **device** (CPU, CUDA or Apple MPS).

| you will | time (`ci` / `lab` / `paper`) |
|---|---|
| run the setup cell used by every chapter, list the presets | seconds / seconds / seconds |
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
