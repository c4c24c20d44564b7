"""Author notebooks/05_forensics.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/05_forensics.ipynb",
    [
        md("""
# Drift forensics: which processing changes break a model?

A model provider knows how its training images were processed; a user's camera may process
them differently. Because the data model of `rawdrift` is differentiable, the gradient of the
task model's loss reaches the ISP parameters, and we can *search* the processing for the
changes that hurt the model most while changing the images least. This chapter runs that search
for each parameter group (black level, demosaicing, white balance, colour correction,
sharpening, denoising, gamma), turns the results into a **forensic signature** a provider can
hand to a user, and lets you browse the damaged images.

**The results in this chapter come from the synthetic microscopy data** (chapter 02), at the
reduced sizes of the preset you run; they illustrate the method and are not the paper's numbers.

**You will be able to**

- state the forensics objective (the paper's eq. (6)) and what the weight λ trades off;
- run a λ sweep per parameter group with `run_forensics` and read its two summary plots;
- tell sensitivity (metric drop) apart from image change (l2), which the paper shows differ;
- write and read a forensic signature: safe changes and configurations to avoid.

| prerequisite | importance | where |
|---|---|---|
| the parametrized data model and its parameter groups | necessary | the ISP chapter |
| training a task model with the engine | helpful | the training chapter |
| adversarial examples (gradient ascent on a loss) | helpful | any robustness primer |

| preset | run time (2 CPU cores) |
|---|---|
| `ci` | well under a minute |
| `lab` | about 15-20 minutes on a shared 2-core CPU (task model on 300 patches, then 4 groups × 4 λ) |
| `paper` | hours on a CPU; use a GPU (8 groups × 6 λ, 20 search epochs) |
"""),
        setup_cell(),
        md("""
## The objective

Let $V = \\Phi_{Proc}^{para}(X_{RAW}, \\theta)$ be the views of the default data model, on which
the task model was trained, and $\\widetilde V$ those of a perturbed data model with parameters
$\\widetilde\\theta$. With the task model frozen, the search minimises

$$\\lambda \\, \\lVert V - \\widetilde V \\rVert_2^2 - \\mathcal L(\\widetilde V, Y)$$

over $\\widetilde\\theta$ with Adam, i.e. it *raises* the task loss while a penalty keeps the
views close to the originals {cite:p}`rawdrift_paper`. Large λ allows almost no change; λ = 0 is
unconstrained ascent. Only the chosen group's parameters move; every other parameter stays at
its default. `rawdrift` measures the penalty as a per-pixel mean squared error, so λ does not
depend on the image size, and adds nothing else to the objective (the authors' released code
also added an SSIM term, with the wrong sign). Two other constraints are available:
`constraint="box"` (each parameter stays within a relative box around its default) and
`constraint="linf_view"` (no view pixel moves by more than ε).
"""),
        code("""
from rawdrift.drift.forensics import ForensicsConfig, run_forensics, signature, forensics_explorer, explorer_figure, GROUP_NAMES
from rawdrift.io import cache_dir

SETTINGS = {
    "ci": dict(n=24, groups=("bl", "dn", "all"), lambdas=(10.0, 0.0), epochs=1, model_epochs=1, lr=0.05,
               batch_size=8),
    "lab": dict(n=300, groups=("bl", "dn", "gc", "all"), lambdas=(1e3, 1e2, 10.0, 0.0), epochs=2,
                model_epochs=5, batch_size=16),
    "paper": dict(),
}
cfg = ForensicsConfig(dataset="synthetic-microscopy", preset=PRESET, out=str(cache_dir("forensics-chapter", PRESET)),
                      device=str(device), progress=False, **SETTINGS[PRESET])
result = run_forensics(cfg)
print(GROUP_NAMES)
"""),
        md("""
The first call trains the task model on the default views (cached under `out/model/`, here in
the `rawdrift` cache folder), then runs
one search per (group, λ), each cached as a small JSON file. Running the cell again reloads
everything in seconds; an interrupted sweep continues where it stopped. The same run from the
command line: `rawdrift forensics --dataset synthetic-microscopy --preset lab --out DIR`.

The second table of the summary asks *who pays* at the weakest constraint (the smallest λ): next
to accuracy it gives the balanced accuracy, macro-F1, the accuracy of the worst class and the
largest drop of any single class from its clean accuracy, with that class's name. Rare classes of
an imbalanced dataset can lose far more than the overall accuracy suggests.
"""),
        code("""
from IPython.display import Markdown
Markdown(result.to_markdown())
"""),
        code("""
assert len(result.records) == len(cfg.groups) * len(cfg.lambdas)
assert all(0 <= r["accuracy"] <= 1 and r["l2"] >= 0 for r in result.records)
import numpy as np
assert np.allclose(result.table("worst_class_accuracy"), np.nanmin(result.table("per_class_accuracy"), -1))
free = [result.record(g, 0.0) for g in result.groups]
assert all(r["train_loss"] >= result.clean["train_loss"] - 1e-6 for r in free)
""", tags=["remove-cell"]),
        md("""
## Sensitivity per parameter group

Left: test accuracy after the search against λ (λ = 0 is drawn at the left edge of the log axis).
Right: the size of the image change, the mean over test images of the per-image l2 norm of
$V - \\widetilde V$, against the accuracy it bought. In the paper, on real microscopy data,
changing all parameters hurts most; of the single groups, black level and denoising are the most
harmful; and a larger image change does not always mean a larger drop. Compare with what your
run shows: with small models and few epochs the ordering can differ.
"""),
        code("""
fig = result.plot_figure6()
"""),
        md("""
## What the damage looks like

One test patch processed by the searched data model of one group at each λ. Small, physically
plausible changes in processing (a slightly different black level, a softer blur) can matter
more than visibly larger ones.
"""),
        code("""
fig = result.plot_samples("bl" if "bl" in result.groups else result.groups[0])
"""),
        md("""
## The forensic signature

A provider who licenses the model can hand a user this table: per parameter group, the largest
change that kept accuracy within a tolerance of its clean value, and the searched
configurations that broke it (their parameters are in the JSON file, `ForensicSignature.save`).
"""),
        code("""
sig = signature(result, tolerance=0.05)
sig.save(f"{cfg.out}/signature.json")
Markdown(sig.to_markdown())
"""),
        code("""
for g, s in sig.groups.items():
    assert all(a["metric"] < sig.clean - sig.tolerance for a in s["avoid"])
    assert s["safe"] is None or s["safe"]["metric"] >= sig.clean - sig.tolerance
""", tags=["remove-cell"]),
        md("""
## Explorer

Pick a parameter group and a λ to see the same test patch processed by the searched data model,
with the accuracy it leaves. The widget reads the cached results, so it is instant. On the
static book page widgets do not run: the first figure below is the widget's initial state
(all parameters, smallest λ).
"""),
        code("""
fig = explorer_figure(result)
""", tags=["hide-input"]),
        code("""
forensics_explorer(result)
"""),
        md("""
## Summary

- Drift forensics optimises the data model, not the images: the search returns ISP parameter
  values, a concrete description of processing to avoid.
- λ trades image change against damage; λ = 0 shows how bad a group can get.
- Sensitivity is per group and is not the size of the image change.
- `signature(result, tolerance)` condenses a sweep into what a user of the model needs.

**What's next:** drift adjustment, where the same gradient trains the data model together with
the task model.

**References:** {cite:t}`rawdrift_paper`, Section 5.2 and Figure 6; Kingma and Ba, *Adam* (2015).
"""),
    ],
)
