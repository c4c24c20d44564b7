"""Author notebooks/08_reliability.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/08_reliability.ipynb",
    [
        md("""
# Reliability maps: where in ISP parameter space does a model stay reliable?

A model is tested on images processed one way; in use, exposure and tone curves vary. Instead
of asking "how much accuracy do we lose at this one setting?", this chapter asks for a **map**:
over a whole box of ISP parameters, where does the model keep its accuracy above a threshold
$h$, and where does it not? Evaluating the model everywhere is expensive, so we learn the map
from a small budget of evaluations, following {cite:t}`nguyen2024reliability`: sample the box
cleverly with a Gaussian process (GP), rebalance the rare class, and train a small
*distortion classifier* that predicts reliable / unreliable for every setting. Where that paper
uses ad-hoc image distortions, `rawdrift` moves along physically meaningful axes of the
differentiable data model of {cite:t}`rawdrift_paper`.

**The results in this chapter come from the synthetic microscopy data** (chapter 02) and a task
model trained at the reduced sizes of the preset you run; they illustrate the method and are
neither the seed paper's numbers nor claims about real microscopes.

**You will be able to**

- define the reliability oracle $f(c)$ and the label "reliable iff $f(c) \\ge h$";
- compare random and GP-based sampling by how many rare-class points a budget finds;
- explain SMOTE and the paper's SMOTE-GP filter, and check how many synthetic points are right;
- read a Table-3 style comparison of distortion classifiers and a true vs predicted map;
- move $h$ and the budget in an explorer and see the map change.

| prerequisite | importance | where |
|---|---|---|
| the parametrized data model (exposure, gamma) | necessary | the data-models chapter |
| training a task model with the engine | helpful | the getting-started chapter |
| Gaussian process regression (mean and variance) | helpful | any GP primer |
| class imbalance, precision, recall and F1 | helpful | any ML primer |

| preset | run time (2 shared CPU cores) |
|---|---|
| `ci` | well under a minute (tiny model, 8 x 8 grid, budgets 10 and 20) |
| `lab` | about 14 minutes the first time on a busy 2-core CPU (model on 667 patches, 16 x 16 grid, budgets up to 60, 3 seeds, about 600 oracle calls); seconds once cached |
| `paper` | an hour or more on a CPU; use a GPU (32 x 32 grid, budget 600) |
"""),
        setup_cell(),
        md("""
## The idea

Let $T$ be a trained classifier, $D$ a verification set of raw images and $C$ a box of ISP
parameters $c = (c_1, \\dots, c_d)$. The **oracle** $f(c)$ is the task metric of $T$ on $D$
rendered through configuration $c$ by the torch ISP. A configuration is **reliable** iff
$f(c) \\ge h$. We want a cheap classifier $S: C \\to \\{0, 1\\}$ (the *distortion classifier*) that
predicts this label everywhere, trained on a small budget $I$ of oracle calls.

Two difficulties, two remedies {cite:p}`nguyen2024reliability`:

1. **The reliable region is small.** Random points rarely land in it. GP-based sampling fits a
   GP (mean $\\mu_t$, standard deviation $\\sigma_t$) to the $t$ points seen so far and evaluates
   next the maximiser of $q(c) = \\beta_t \\sigma_t(c) + (\\mu_t(c) - h)$, with
   $\\beta_t = 2[\\log(d t \\pi^2) - \\log(6\\delta)]$ and $\\delta = 0.1$: it explores where it is unsure
   and exploits where it expects reliability. If the failing side is the rarer one, $h - \\mu_t$
   replaces $\\mu_t - h$.
2. **The labels stay imbalanced.** SMOTE adds synthetic minority points on segments between real
   ones; some of them fall outside the minority region. **SMOTE-GP** fits a GP to the real
   minority points and keeps a synthetic point only where the GP's posterior variance is at most
   $v$, i.e. close to evidence.

The ground truth for scoring is $f$ on a dense grid of the box, computed once and cached.
"""),
        md("""
## The parameter box and the oracle

Two axes of the data model: a digital **exposure** gain on the raw signal above the black level
(1 = as captured; values below 1 darken, above 1 brighten and clip highlights) and the **gamma**
of the gamma-correction stage (the camera's default is 2.2). The oracle trains a ResNet-18 on the
default views of the first cross-validation fold (cached, reused on every run) and scores it on
held-out images rendered through each configuration. The metric is pluggable: `accuracy`,
`balanced_accuracy` or `worst_class_accuracy` (all from `rawdrift.metrics`).
"""),
        code("""
from IPython.display import Markdown
from rawdrift.drift.reliability import (CHAPTER_BOX, CHAPTER_SETTINGS, ISP_PARAMETERS, ReliabilityConfig,
    cached_reliability, explore_reliability, markdown_table, plot_positives, reliability_figure,
    reliability_sweep, trained_isp_oracle)
from rawdrift.io import cache_dir

S = CHAPTER_SETTINGS[PRESET]
Markdown(markdown_table([{"axis": n, "low": lo, "high": hi, "meaning": ISP_PARAMETERS[n]}
                         for n, lo, hi in zip(CHAPTER_BOX.names, CHAPTER_BOX.low, CHAPTER_BOX.high)], digits=2))
"""),
        code("""
oracle = trained_isp_oracle("synthetic-microscopy", CHAPTER_BOX, preset=PRESET, device=device, **S["oracle"])
worst = trained_isp_oracle("synthetic-microscopy", CHAPTER_BOX, preset=PRESET, device=device,
                           metric="worst_class_accuracy", **S["oracle"])
print(f"verification set: {oracle.info['n_verify']} held-out images; training configuration at {oracle.default_point}")
print(f"accuracy there: {oracle.clean:.3f}; worst-class accuracy there: {worst.clean:.3f}")
"""),
        md("""
The worst-class accuracy is a harsh metric on this data: the rarest class has only a handful of
patches, and a model that never predicts it scores 0 everywhere, which gives a flat, useless map.
The chapter therefore maps accuracy; pass `metric=` to map another metric.

We call a configuration reliable if it costs the model at most 5 points of accuracy relative to
its own processing, $h = f(c_{train}) - 0.05$. (The seed paper fixes $h$ in absolute terms; a
threshold relative to the clean accuracy keeps the chapter meaningful for the weak `ci` model.)
"""),
        code("""
H = round(oracle.clean - 0.05, 2)
cfg = ReliabilityConfig(preset=PRESET, box=CHAPTER_BOX, h=H, metric=oracle.metric, oracle=oracle.label,
                        synthetic_truth="grid", out=cache_dir("reliability-chapter", PRESET), **S["run"])
result = cached_reliability(cfg, oracle)
print(f"h = {H}; dense grid: {len(result.truth)} configurations; "
      f"minority = {'reliable' if result.minority_reliable else 'failing'} side, "
      f"{result.grid_labels.mean():.1%} of the grid")
"""),
        md("""
`cached_reliability` runs the whole experiment (ground truth, every sampler, rebalancer,
classifier, budget and seed) once and saves it under the `rawdrift` cache; later runs load it
in seconds. The command line does the same with any trained checkpoint:
`rawdrift reliability --oracle isp --model model.pt --axis exposure=0.1:2 --axis gamma=1:4 --out DIR`
(`--oracle analytic`, the default, runs a documented toy problem that needs no model).
"""),
        code("""
assert 0 <= result.truth.min() <= result.truth.max() <= 1
assert len(result.rows) == len(cfg.seeds) * 2 * len(cfg.budgets) * len(cfg.rebalancers) * len(cfg.classifiers)
assert all(0 <= r["f1"] <= 1 for r in result.rows)
assert all(s["kept_minority"] <= s["kept"] <= max(s["generated"], s["kept"]) for s in result.synthetic)
""", tags=["remove-cell"]),
        md("""
## Random vs GP sampling

How many minority points does each sampler find within a budget? (Smaller budgets are the first
points of the same runs; mean and spread over seeds.) In the seed paper, on CIFAR-10 with a
budget of 600, random sampling found 27 reliable points and GP sampling 130.
"""),
        code("""
fig = plot_positives(result)
Markdown(markdown_table(result.positives_table(), ["sampler", "budget", "n_positive", "n_positive_std"], digits=1))
"""),
        md("""
## Rebalancing: how many synthetic points are right?

SMOTE interpolates between real minority points; SMOTE-GP keeps only those where a GP fitted to
the real minority points is confident. The table counts, per sampler and budget, the synthetic
points generated and kept, and how many of the kept ones truly lie in the minority region (their
label on the nearest point of the dense ground-truth grid). SMOTE-GP's threshold is the seed
paper's $v = 0.005$, in units of the variance of the standardised metric values. With only a
handful of real minority points the GP is unsure almost everywhere, and SMOTE-GP may keep no
synthetic point at all; it then trains on the real samples alone, exactly like no rebalancing.
"""),
        code("""
syn = [r for r in result.synthetic_table() if r["rebalancer"] in ("smote", "smote_gp")]
Markdown(markdown_table(syn, ["sampler", "budget", "rebalancer", "generated", "kept", "kept_minority", "precision"],
                        digits=2))
"""),
        md("""
## Distortion classifiers (Table 3 style)

F1 of the minority class on the dense grid, per classifier and averaged over classifiers (the
seed paper's Table 3 reports that average), at the largest budget, mean over seeds. Below it,
the average over classifiers at every budget. The paper's pattern, on real images: GP sampling
with SMOTE-GP above random sampling with SMOTE above random sampling alone. Small grids and
budgets make our numbers noisy.
"""),
        code("""
Markdown(markdown_table(result.classifier_table(), digits=3))
"""),
        code("""
Markdown(markdown_table(result.table(), ["sampler", "budget", "rebalancer", "f1", "f1_std", "precision", "recall"],
                        digits=3))
"""),
        md("""
## True vs predicted map

Left: the true metric over the box with the boundary $f = h$ (red) and the training
configuration (star). Middle and right: the region a random forest predicts as minority (grey)
after random and after GP sampling with SMOTE-GP, with the sampled points (filled red: minority).
Exposure and gamma trade against each other: a view made darker by a lower exposure is brightened
again by a larger gamma. With a well-trained model (the `lab` preset) the reliable set is
therefore a narrow, tilted band through the training configuration, a shape that random points
rarely hit and that axis-aligned rules (a decision tree) approximate only as a staircase.
"""),
        code("""
fig = reliability_figure(result, mark=oracle.default_point)
"""),
        code("""
fig = reliability_figure(result, rebalancer="none", mark=oracle.default_point)
"""),
        md("""
## Explorer

Move the threshold $h$ and the budget. All states are precomputed
(`reliability_sweep`: one cached run per $h$, random forest with SMOTE-GP, first seed), so the
widget answers at once. The sweep is cheap: the dense grid and the random points do not depend on
$h$, and neither, mostly, do the GP points: in $q(c) = \beta_t \sigma_t(c) + (\mu_t(c) - h)$ the
threshold is a constant shift that does not move the maximiser; $h$ only decides which side counts
as the minority. The oracle remembers every point it has evaluated, so repeated points are free.
On the static book page widgets do not run: the figure below is the widget's initial state.
"""),
        code("""
hs = sorted({round(oracle.clean - d, 2) for d in (0.10, 0.05, 0.0)})
sweep = reliability_sweep(ReliabilityConfig(**{**cfg.__dict__, **S["sweep"]}), oracle, hs)
fig = reliability_figure(sweep, mark=oracle.default_point)
""", tags=["hide-input"]),
        code("""
explore_reliability(sweep, mark=oracle.default_point)
"""),
        code("""
assert sorted(sweep) == hs and all(r.config.h == h for h, r in sweep.items())
assert all((r.truth == result.truth).all() for r in sweep.values())
""", tags=["remove-cell"]),
        md("""
## Summary

- A reliability map labels every ISP configuration of a box as reliable ($f(c) \\ge h$) or not;
  here $f$ is the accuracy of a trained ResNet-18 on held-out synthetic microscopy images
  rendered through each configuration by the torch ISP.
- The reliable region is the rare class; GP-based sampling spends the budget near it and finds
  more of it than random sampling does.
- SMOTE-GP keeps fewer synthetic points than SMOTE, chosen where a GP is confident; the chapter
  counts how many of them truly lie in the minority region.
- Every number and map in this chapter comes from synthetic data and a small model; run the
  `lab` or `paper` preset, or `rawdrift reliability` on your own checkpoint, for figures that
  mean something about a real system.

**What's next:** combine the map with drift forensics: forensics finds the most harmful
direction from one configuration, the map charts a whole box.

**References:** {cite:t}`nguyen2024reliability` (GP sampling, SMOTE-GP, Table 3);
{cite:t}`rawdrift_paper` (the data models); scikit-learn (GPs and classifiers) and
imbalanced-learn (SMOTE).
"""),
    ],
)
