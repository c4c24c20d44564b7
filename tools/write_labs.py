"""Author notebooks/07_labs.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook


def solution(text: str):
    """A code cell whose source the book hides behind a "Show the solution" toggle (myst-nb ``hide-input``)."""
    cell = code(text, tags=["hide-input"])
    cell.metadata["mystnb"] = {"code_prompt_show": "Show the solution", "code_prompt_hide": "Hide the solution"}
    return cell


write_notebook(
    "notebooks/07_labs.ipynb",
    [
        md("""
# Labs: three exercises with self-checks

Three exercises that put the earlier chapters to work: you add a **tone-mapping stage** to the
data model and measure the drift it causes, you run **drift forensics under an ℓ∞ budget** on the
views, and you bring **your own raw photo (DNG)** into `rawdrift`. Each exercise has a starter cell
with a marked place to edit, a self-check from `rawdrift.labs` that tells you what is still wrong
(with the measured value and a hint), and a solution hidden behind a toggle.

**The models and numbers in this chapter come from synthetic data** (the synthetic microscopy
dataset of chapter 02, at the reduced sizes of the preset you run). The "your own DNG" exercise
uses a synthetic drone patch written as a DNG until you replace it with a file of yours.

**You will be able to**

- write an ISP stage as a differentiable `nn.Module` and insert it into a `Pipeline`
  (`Pipeline.insert_stage`);
- measure how a task model trained on default views degrades under that stage;
- run drift forensics with an ℓ∞ budget on the views and read which parameter group hurts most;
- read a raw file with `read_raw`, check its metadata and develop it with the 12 configurations.

| prerequisite | importance | where |
|---|---|---|
| the data model and its stages | necessary | [03_data_models](03_data_models.ipynb) |
| drift forensics, eq. (6) | necessary for exercise 2 | [05_forensics](05_forensics.ipynb) |
| raw files, black level, Bayer patterns | necessary for exercise 3 | [02_raw_data](02_raw_data.ipynb), [real data](../book/real_data.md) |
| writing a `torch.nn.Module` | necessary | [PyTorch tutorials](https://pytorch.org/tutorials/) |

| preset | run time (2 CPU cores) |
|---|---|
| `ci` | well under a minute (tiny models, 1 epoch) |
| `lab` | 3-6 minutes the first time on a shared 2-core CPU (a task model on 450 patches, 10 epochs; then 4 groups × 2 λ), under a minute once cached |
| `paper` | tens of minutes on a CPU; use a GPU |

**How the exercises work.** Edit the cells marked `✏️ EDIT`, then run the check below them.
A check never raises an error: it lists what passed (✅) and what failed (❌), with the measured
value and a hint. The starters run as they are (so that the book builds) but are incomplete, so
their checks show failures until you finish them. When you are stuck, open the solution; the
book page shows the check passing on it.
"""),
        setup_cell(),
        code("""
import torch
from torch import nn
from IPython.display import Markdown
from rawdrift.io import cache_dir
from rawdrift.isp import Pipeline
from rawdrift.labs import check_tone_mapping, check_linf_forensics, check_own_dng, stage_drift, standin_dng

LAB = cache_dir("labs", PRESET)  # every result of this chapter is cached here
"""),
        md("""
## Exercise 1: a tone-mapping stage, and the drift it causes

Cameras and photo apps apply a **tone curve** after the ISP stages of chapter 03: a global,
increasing map of the display values that lifts the shadows or compresses the highlights. A
model trained on views without it sees different images when a user's software adds one. Your
task:

1. Write `ToneMap(strength)`, an `nn.Module` that maps views `(B, 3, H, W)` in $[0, 1]$ to views
   of the same shape in $[0, 1]$; `strength = 0` is the identity, larger strengths bend the curve
   more; the curve is increasing (a brighter pixel never becomes darker); it is differentiable in
   the input and in `strength`, which is an `nn.Parameter` (so that forensics and adjustment could
   search or learn it).
2. Insert it after gamma correction with `Pipeline.insert_stage` and measure the accuracy of a
   model trained on default views as the strength grows.

A hint for the curve: $f(x) = x(1+s)/(1+sx)$ is one family with $f(0)=0$ and $f(1)=1$; there are
many others.
"""),
        code("""
class ToneMap(nn.Module):
    \"\"\"A global tone curve for views in [0, 1]; strength 0 is the identity.\"\"\"

    def __init__(self, strength=0.5):
        super().__init__()
        self.strength = nn.Parameter(torch.tensor(float(strength)))

    def forward(self, rgb):
        # ✏️ EDIT HERE: return the tone-mapped view (same shape, values in [0, 1], increasing in rgb)
        return rgb


check_tone_mapping(ToneMap)
"""),
        solution("""
class ToneMap(nn.Module):
    \"\"\"A Reinhard-style global curve through (0, 0) and (1, 1); it lifts the shadows as strength grows.\"\"\"

    def __init__(self, strength=0.5):
        super().__init__()
        self.strength = nn.Parameter(torch.tensor(float(strength)))

    def forward(self, rgb):
        s = self.strength.clamp_min(0.0)  # negative strengths would leave [0, 1]
        return rgb * (1 + s) / (1 + s * rgb)
"""),
        code("""
tone_check = check_tone_mapping(ToneMap)
tone_check
"""),
        code("""
assert tone_check.passed, str(tone_check)
""", tags=["remove-cell"]),
        md("""
Now the drift. `stage_drift` trains a classifier on views of the default static pipeline
`bi,s,ga` (saved to `MODEL` in the lab's cache folder, and reused by exercise 2) and evaluates it on the held-out fold
with `ToneMap(strength)` inserted after gamma correction, the same call you would write with
`Pipeline.static("bi,s,ga", camera).insert_stage(ToneMap(s), after="gc")` and
`rawdrift.train.evaluate`.
"""),
        code("""
N = {"ci": 36, "lab": 450, "paper": None}[PRESET]           # patches (None: the preset's full dataset)
EPOCHS = {"ci": 1, "lab": 10, "paper": None}[PRESET]        # task-model epochs (None: the preset's)
BATCH = {"ci": None, "lab": 16, "paper": None}[PRESET]      # task-model batch size (None: the preset's)
MODEL = LAB / "task-model.pt"                               # shared with exercise 2
drift = stage_drift(ToneMap, strengths=(0.5, 2.0, 8.0), preset=PRESET, n=N, epochs=EPOCHS, batch_size=BATCH,
                    model_path=MODEL, device=str(device))
Markdown(drift.to_markdown())
"""),
        code("""
fig = drift.plot()
"""),
        code("""
assert len(drift.scores) == 3 and all(0 <= v <= 1 for v in drift.scores)
""", tags=["remove-cell"]),
        md("""
**Questions.** How strong can the curve get before the accuracy drops by more than 5 points? Is
the drop monotone in the strength? Try `after="dn"` (the curve then acts on linear values, before
gamma): is the model more or less sensitive there? At the `ci` preset the model is too small for
the numbers to mean much; run the chapter at `lab`.
"""),
        md("""
## Exercise 2: drift forensics under an ℓ∞ budget

Chapter 05 penalised the size of the view change with an ℓ2 term. A different question a model
provider may ask: *within a budget where no pixel of any view moves by more than ε, how much
damage can a change of one ISP parameter group do?* `ForensicsConfig` supports this with
`constraint="linf_view"` and `epsilon` (the search is pulled back along the segment to the
default parameters until the budget holds, see the chapter 05 notes). Your task:

1. Configure a sweep with `constraint="linf_view"` and `epsilon = 0.1` (a tenth of the display
   range), over the groups and λ values given in `SETTINGS2`; check the configuration,
   then run it. The sweep attacks the task model of exercise 1 (`model_path`): the parametrized
   data model's defaults are the static `bi,s,ga` it was trained on, and the split is the same.
2. Answer: which parameter group hurts the model most within this budget? Set `MY_ANSWER` to its
   code (`"bl"`, `"dn"`, ...) and let the check compare it with your sweep.
"""),
        code("""
from rawdrift.drift.forensics import ForensicsConfig, run_forensics

EPSILON = 0.1
SETTINGS2 = {
    "ci": dict(groups=("bl", "dn", "all"), lambdas=(10.0, 0.0), epochs=1, lr=0.05, batch_size=8),
    "lab": dict(groups=("bl", "dn", "gc", "all"), lambdas=(100.0, 0.0), epochs=2, lr=0.02, batch_size=16),
    "paper": dict(lambdas=(100.0, 0.0)),
}
cfg2 = ForensicsConfig(dataset="synthetic-microscopy", preset=PRESET, n=N, model_epochs=EPOCHS,
                       model_path=str(MODEL),  # the task model of exercise 1, trained on the same split
                       out=str(LAB / "linf-forensics"), device=str(device), progress=False, **SETTINGS2[PRESET],
                       constraint="l2_penalty",  # ✏️ EDIT: the l-infinity constraint
                       epsilon=None)             # ✏️ EDIT: the budget EPSILON
MY_ANSWER = None                                 # ✏️ EDIT after running: the most harmful group's code
check_linf_forensics(cfg2, epsilon=EPSILON)
"""),
        md("""
When the check of the configuration only says that it has not been run yet, run it with
`result2 = run_forensics(cfg2)` and check the result with
`check_linf_forensics(result2, epsilon=EPSILON, most_harmful=MY_ANSWER)`.
"""),
        solution("""
from dataclasses import replace

cfg2 = replace(cfg2, constraint="linf_view", epsilon=EPSILON)
result2 = run_forensics(cfg2)
drops = result2.drops()  # largest accuracy drop per group
MY_ANSWER = max(drops, key=drops.get)
"""),
        code("""
linf_check = check_linf_forensics(result2, epsilon=EPSILON, most_harmful=MY_ANSWER)
linf_check
"""),
        code("""
assert linf_check.passed, str(linf_check)
assert all(r["linf"] <= EPSILON + 1e-4 for r in result2.records)
""", tags=["remove-cell"]),
        code("""
Markdown(result2.to_markdown())
"""),
        code("""
fig = result2.plot_figure6()
"""),
        md("""
**Questions.** Compare with chapter 05's ℓ2 sweep: does the ranking of the groups change when the
budget is on the largest pixel change instead of the mean squared change? Look at the l2 column:
the black-level search stops at a tiny average change. Why? (Hint: gamma correction is steepest
near black, so a small shift of the black level moves the darkest pixels of a view most, and
those pixels use up the ℓ∞ budget first.) Searching `all` parameters at once can include every
single-group change, yet it may end up doing less damage than one group alone: what does that
say about the search (2 epochs of Adam, then a pull-back into the budget)?
"""),
        md("""
## Exercise 3: bring your own DNG

Everything in `rawdrift` works on any Bayer raw file LibRaw reads: DNG, and the camera makers'
formats (NEF, CR2, ARW, ...). `rawdrift.raw.dng.read_raw(path)` returns a `RawImage`: the mosaic
normalised by the file's white level and cropped to RGGB, plus the file's black levels, as-shot
white balance and colour matrix; `image.camera()` turns those into the `Camera` the ISP uses.

Until you have a file of your own, the lab writes a stand-in: a synthetic drone patch saved as a
DNG with `rawdrift.raw.dng.write_dng`. Your task:

1. Set `MY_RAW` to the path of a raw photo of yours (on Colab, upload it with the file browser
   on the left first), or keep the stand-in.
2. Read it with `read_raw` into `my_image`, and let the check verify the file (even size, known
   Bayer pattern, sane black and white levels, positive white balance) and develop a centre crop.
3. Develop the crop with all 12 configurations and look for the one that differs most from
   `bi,s,ga` (`rawdrift.plots.config_grid`).
"""),
        code("""
STANDIN = standin_dng(LAB / "standin.dng", dataset="synthetic-drone", preset=PRESET)

from rawdrift.raw.dng import read_raw

MY_RAW = STANDIN  # ✏️ EDIT 1: the path to your own raw file, e.g. "my_photo.dng"
my_image = None   # ✏️ EDIT 2: read MY_RAW with read_raw
check_own_dng(my_image)
"""),
        solution("""
my_image = read_raw(MY_RAW)  # RGGB crop, values = counts / white level
print(my_image.summary())
"""),
        code("""
dng_check = check_own_dng(my_image, config="bi,s,ga", max_side=256)
dng_check
"""),
        code("""
assert dng_check.passed, str(dng_check)
assert torch.isfinite(dng_check.data["view"]).all()
""", tags=["remove-cell"]),
        code("""
from rawdrift.plots import config_grid

crop = my_image.raw[..., :128, :128]  # a corner, whole Bayer tiles
fig = config_grid(crop, dng_check.data["camera"])
"""),
        md("""
**Questions.** Which configuration differs most from `bi,s,ga` on your photo, and where in the
image (edges, flat areas, dark areas)? If your camera's file reports `white_balance_source` other
than `as-shot` or `matrix_source = none`, what does that change in the developed colours?

## Summary

- A new ISP stage is an `nn.Module`; `Pipeline.insert_stage(module, after=...)` puts it into
  any static or parametrized data model, and gradients reach its parameters.
- Drift under a stage is measured like any synthesis cell: train on default views, test on views
  with the stage (`stage_drift`).
- Forensics takes other budgets than eq. (6)'s ℓ2 penalty: `constraint="linf_view"` bounds the
  largest pixel change, `constraint="box"` the parameters.
- Any Bayer raw file enters through `read_raw`; its own metadata becomes the ISP's defaults.
- `rawdrift.labs` holds the self-checks: `check_tone_mapping`, `check_linf_forensics`,
  `check_own_dng`.

**What's next:** run the drift controls on real data ([real data](../book/real_data.md)) or at
the `paper` preset on a GPU ([running](../book/running.md)).

**References:** {cite:t}`rawdrift_paper` (Sections 4-5); E. Reinhard et al., *Photographic tone
reproduction for digital images* (SIGGRAPH 2002) for the tone curve family of the solution;
Adobe, *Digital Negative (DNG) Specification* 1.4.
"""),
    ],
)
