"""Author notebooks/04_synthesis.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/04_synthesis.ipynb",
    [
        md("""
# Drift synthesis: testing a model on the data it could have seen

A model is trained on images that went through one ISP configuration. Tomorrow the camera
vendor changes a firmware setting, or the lab buys a different microscope camera: the same scenes
arrive through another configuration. **Drift synthesis** {cite:p}`rawdrift_paper` tests for
exactly this. It renders the held-out raw data through every data model of the previous chapter
and measures the task model on each, giving a *train × test grid*. The usual alternative,
testing under **common corruptions** (noise, blur, contrast changes in the style of ImageNet-C),
damages finished images in ways no camera would; the paper finds that the two give very
different pictures of robustness.

**You will be able to**

- run a drift-synthesis grid with `run_synthesis(SynthesisConfig(...))` and reload it from its cache;
- read the grid: accuracy on the training configuration versus the other configurations;
- compare ISP drift with common corruptions, as mean drops, rankings and a normalised error;
- find the worst train/test pair and see what differs between its two views;
- see which classes pay for a drift (per-class drops, worst-class accuracy, balanced accuracy).

**The numbers in this chapter come from synthetic data** (the synthetic microscopy dataset of
[Raw data](02_raw_data.ipynb)), with a grid reduced to fit the preset; they are not the
paper's results.

| prerequisite | importance | where |
|---|---|---|
| the ISP and its 12 configurations | necessary | [03_data_models](03_data_models.ipynb) |
| training a classifier, accuracy, k-fold cross-validation | necessary | [PyTorch tutorials](https://pytorch.org/tutorials/) |
| ImageNet-C common corruptions | helpful | Hendrycks and Dietterich, ICLR 2019 |

| preset | grid (training × test configurations, folds, epochs) | run time (2 CPU cores) |
|---|---|---|
| `ci` | 3 × 12, 2 folds, 1 epoch, 3 corruptions, 72 images at 32 px | under a minute: a smoke test, the numbers mean nothing |
| `lab` | 4 × 12, 2 folds, 5 epochs, 10 corruptions, 1000 images at 64 px | roughly 15-30 minutes the first time (rendering the 12 configurations took about 6 minutes on a busy 2-core machine, then 8 models), seconds after (cached) |
| `paper` | 12 × 12, 5 folds, 100 epochs, 10 corruptions, 256 px | hours on a GPU: use the command line |
"""),
        setup_cell(),
        md("""
## The experiment in one call

`SynthesisConfig.for_book(PRESET)` holds the grid this chapter uses at each preset (the choice
lives in `rawdrift.drift.synthesis.BOOK_GRIDS`, not in the notebook). At `ci` and `lab` it trains
on a few configurations only, chosen so that every demosaicing, sharpening and denoising method
appears among them, and tests each model on **all 12**. `run_synthesis` then

1. renders the whole dataset through every configuration it needs, once;
2. for each training configuration and each fold of a stratified k-fold split, trains a ResNet18
   on the training part of that configuration's views (with flips and 90° rotations, as the
   authors did);
3. tests each model on the held-out fold rendered through every test configuration, and on its
   own configuration's held-out views damaged by each common corruption at severity 3.

Models and evaluations are cached on disk, so running the cell again (or after an interruption)
only does what is missing. For the full protocol, run from a terminal:
`rawdrift synthesis --preset paper --dataset synthetic-microscopy` (or `raw-microscopy` with
`--root` pointing at the real data, and `synthetic-drone` / `raw-drone` for segmentation).
"""),
        code("""
import numpy as np
from IPython.display import Markdown, display

from rawdrift.data import get_dataset
from rawdrift.drift.synthesis import SynthesisConfig, run_synthesis, worst_case_figure
from rawdrift.plots import markdown_table

cfg = SynthesisConfig.for_book(PRESET)
print(cfg.resolved())
result = run_synthesis(cfg)
print(f"grid {result.isp_scores.shape} (train, test, fold); wall time of the run {result.seconds:.0f} s")
"""),
        code("""
assert result.isp_scores.shape[1] == 12 and np.isfinite(result.isp_scores).all()
assert result.corruption_scores.shape[1] == 1 + len(result.conditions)
""", tags=["remove-cell"]),
        md("""
## The two grids

Left: the ISP grid. Row = configuration the model was trained on, column = configuration of the
test views; each cell is the mean accuracy over folds (its border colour encodes the standard
deviation), a star marks the best model of each column and the numbers 1-3 before the row names
give the three best models overall. Right: the same models on their own test views, clean and
under each common corruption.
"""),
        code("""
result.plot_grids();
"""),
        md("""
## Headline: how much does each kind of drift cost?

The paper reports the mean over the grid on the real datasets: for classification, accuracy goes
from 0.82 on the training configuration to 0.80 on the other 11 configurations, but to 0.55 under
common corruptions; for segmentation, IoU goes from 0.71 to 0.65 under ISP drift and to 0.49
under corruptions. Ours, from the run above:
"""),
        code("""
print(result.summary().to_text(result.metric))
display(Markdown(markdown_table(result.paper_comparison(), floatfmt=".3f")))
print(f"ours: synthetic microscopy, preset {result.config['preset']!r}, "
      f"{len(result.train_configs)} x {len(result.test_configs)} grid, {result.isp_scores.shape[2]} folds, "
      f"{result.config['epochs']} epoch(s)")
"""),
        md("""
Read this table with its provenance in mind. The paper's column is the real Raw-Microscopy data
at the paper's protocol; ours is synthetic microscopy at the chosen preset. At `ci` the models
train for one epoch on a few dozen images, so they barely beat chance and the comparison is only
a check that the machinery runs. At `lab` the models train for 5 epochs on 500 images per fold
(the paper: 100 epochs), and the pattern to look for is the paper's: the drop under ISP drift is
much smaller than the drop under corruptions.

## Rankings and the top-3 overlap

Which training configuration gives the most robust model? Ranking the models by their mean over
the ISP test configurations and by their mean over the corruptions need not agree: the paper found
no overlap between the two top-3 lists for classification. The last column is an ImageNet-C style
**normalised corruption error**: a model's summed error over the corruptions divided by that of the
baseline model trained on `bi,s,ga` (below 1: more robust than the baseline).
"""),
        code("""
s = result.summary()
nce = result.normalised_corruption_error()
rows = [{"rank": r, "ISP ranking": a, "ISP mean": va, "corruption ranking": b, "corruption mean": vb,
         "normalised corruption error": nce[b]} for (r, a, va), (_, b, vb) in zip(s.isp_ranking, s.corruption_ranking)]
display(Markdown(markdown_table(rows, floatfmt=".3f")))
print("top-3 overlap:", sorted(s.top3_overlap) or "none")
"""),
        code("""
assert abs(nce[result.config["baseline"]] - 1) < 1e-9
assert len(s.isp_ranking) == len(result.train_configs)
""", tags=["remove-cell"]),
        md("""
With only three or four training configurations (the `ci` and `lab` grids), a top-3 overlap is
almost guaranteed and says little; it becomes informative on the full 12-row grid.

## The worst case: what changed between the two views?

`worst_pair` finds the off-diagonal cell with the largest drop relative to the model's own
configuration. `worst_case_figure` shows a sample developed by both configurations and their
absolute difference per colour channel. The differences sit at edges and fine texture (the
cell's granules and membrane), which is where demosaicing and sharpening decisions matter.
"""),
        code("""
micro = get_dataset(result.config["dataset"], preset=result.config["preset"])
print("worst pair (train, test, drop):", result.worst_pair())
worst_case_figure(result, micro);
"""),
        md("""
## Who pays for the drift?

A mean accuracy hides which classes lose. The microscopy classes range from under 1% to about a
quarter of the cells, so a drift can cost a rare class most of its accuracy while the mean barely
moves. `per_class_drop_figure` shows, for the worst pair, each class's accuracy on the training
configuration minus its accuracy on the test configuration, per fold (left), and the same drop
for every test configuration (right); the headline above also lists balanced accuracy, macro-F1
and the worst-class accuracy for each part of the grids, and `result.metric_grid(name)` gives any
of them cell by cell. At `ci` a test fold holds at most a couple of cells of the rarest classes
(sometimes none: that class's row is then blank), so these per-class numbers jump in large steps.
"""),
        code("""
result.per_class_drop_figure();
"""),
        code("""
tr, te, _ = result.worst_pair()
i, j, d = result.train_configs.index(tr), result.test_configs.index(te), result.test_configs.index(tr)
drop = result.per_class_drop("isp")[i, j]
assert np.allclose(drop, result.per_class[i, d] - result.per_class[i, j], equal_nan=True)
assert np.allclose(result.metric_grid("worst_class_accuracy"), np.nanmin(result.per_class, -1), equal_nan=True)
""", tags=["remove-cell"]),
        md("""
## Explorer: any cell of the grid

Pick a training and a test configuration and a sample; the explorer shows the two views, their
difference and the cell's mean ± standard deviation over folds, all from the cached result (no
training happens). It needs a running kernel; the figure below it is its default state (the
worst pair).
"""),
        code("""
from rawdrift.widgets import explore_synthesis, synthesis_cell_figure

explore_synthesis(result, micro)
"""),
        code("""
synthesis_cell_figure(result, micro);
"""),
        md("""
## The full grids at `lab`, measured

The grids above are reduced so that the chapter runs in minutes. We also ran the full 12 × 12
grid at the `lab` preset (three folds, 10 corruptions at severity 3) on both synthetic datasets,
once, on the project's 2-core CPU: `rawdrift synthesis --dataset synthetic-microscopy --preset lab
--out runs/synth-micro` (83 minutes on a machine shared with other jobs) and the same with
`synthetic-drone` (27 minutes). The summaries are committed in the repository as
`benchmarks/results/synthesis-lab-synthetic-microscopy.md` and `...-synthetic-drone.md`.

| dataset (metric) | own configuration | other ISP configurations | corruptions | paper, real data |
|---|---|---|---|---|
| microscopy (accuracy) | 0.924 | 0.900 | 0.369 | 0.82 → 0.80 / 0.55 |
| drone (IoU) | 0.865 | 0.844 | 0.341 | 0.71 → 0.65 / 0.49 |

- **The paper's headline holds on synthetic data:** a change of ISP costs about 0.02, the
  corruptions 0.52-0.56, some 24 times more, on both datasets. Our corruption drop is larger
  than the paper's because severity 3 is harsh on 64-128 px images; our ISP drop on drone is
  smaller than the paper's 0.06.
- **The two rankings disagree completely.** Their top-3 lists share no configuration on either
  dataset, and worse: the model that corruption testing ranks most robust is the one that ISP
  drift hurts most. On microscopy `bi,u,me` is first under corruptions and last (12th) under
  ISP drift; on drone `ma,s,ga` is first under corruptions and last under ISP drift.
- **Worst pairs.** Microscopy: trained on `bi,u,me`, tested on `ma,s,ga`, −0.18 accuracy.
  Drone: trained on `ma,s,ga`, tested on `bi,u,me`, −0.11 IoU. The worst single cell costs five
  to eight times the mean ISP drop: averages hide it.

These are synthetic data and short runs (12 epochs); they show the shape of the paper's result,
not its numbers.

## Summary

- Drift synthesis renders the same raw test data through other data models: physically
  faithful drift, as a camera or processing change would cause.
- `run_synthesis(SynthesisConfig(...))` trains one model per training configuration and fold,
  tests it on every configuration and under common corruptions, and caches everything.
- In the paper, corruptions cost far more accuracy than ISP drift (0.82 → 0.55 versus
  0.82 → 0.80) and rank models differently: corruption benchmarks are not a stand-in for the
  drift a camera pipeline causes.
- Our numbers here are from synthetic data on a reduced grid; the CLI runs the full protocol.

**What's next:** drift forensics, which asks which ISP parameters a trained model is most
sensitive to, using the gradients of the previous chapter.

**References:** {cite:t}`rawdrift_paper` (Section 5.1, Figures 4-5, Appendix Tables 7-11);
D. Hendrycks and T. Dietterich, *Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations*, ICLR 2019 (the corruptions and the normalised corruption error).
"""),
    ],
)
