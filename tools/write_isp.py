"""Author notebooks/03_data_models.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/03_data_models.ipynb",
    [
        md("""
# Data models: the image signal processing pipeline

A camera does not hand a task model its raw mosaic. An **image signal processing (ISP)
pipeline** turns the mosaic into the colour image ("view") that people and models look at. The
paper {cite:p}`rawdrift_paper` calls this pipeline a **data model**: an explicit, physically
meaningful description of how the data a model sees came to be. Changing the data model changes
the data, and that is the kind of drift the rest of this book controls.

This chapter takes the pipeline apart stage by stage, shows the 12 static configurations the
paper uses and the differentiable (parametrized) pipeline, checks live that our torch pipeline
reproduces the numpy reference, and lets gradients flow from a loss on the view back to every
ISP parameter. **All images in this chapter are synthetic** (see [Raw data](02_raw_data.ipynb)).

**You will be able to**

- name the eight stages BL, DM, WB, CC, YUV, SH, DN, GC and say what each does to an image;
- build any of the 12 static configurations and the parametrized pipeline with `rawdrift.isp.Pipeline`;
- verify a differentiable pipeline against a trusted reference implementation;
- read gradients of a loss with respect to the ISP's parameters.

| prerequisite | importance | where |
|---|---|---|
| raw data and the Bayer mosaic | necessary | [02_raw_data](02_raw_data.ipynb) |
| convolution and colour spaces (RGB, YUV) | helpful | any image processing primer |
| PyTorch autograd | helpful | [autograd tutorial](https://pytorch.org/tutorials/beginner/basics/autogradqs_tutorial.html) |

| preset | run time (2 CPU cores) |
|---|---|
| `ci` | about ten seconds |
| `lab` | under a minute (datasets cached by the previous chapter) |
| `paper` | about a minute (256 px patches) |
"""),
        setup_cell(),
        md("""
## The pipeline, stage by stage

The pipeline follows the paper's Section 4.2 and Appendix A.1. On a raw mosaic $x_{RAW} \\in [0,1]^{H\\times W}$:

| code | stage | what it does |
|---|---|---|
| BL | black level | subtracts the sensor's offset, one value per colour-filter site |
| DM | demosaicing | fills in the two missing colours at every pixel (`bi` bilinear, `me` Menon 2007, `ma` Malvar 2004) |
| WB | white balance | one gain per colour channel, so that white looks white |
| CC | colour correction | a 3×3 matrix from camera colours to a standard RGB |
| YUV | colour space | luma Y and chroma U, V, where sharpening and denoising act |
| SH | sharpening | `s` a 3×3 sharpening filter, `u` unsharp masking |
| DN | denoising | `ga` Gaussian filter (σ = 0.5), `me` 3×3 median filter; then back to RGB |
| GC | gamma correction | clip to [0, 1], then $v^{1/\\gamma}$ with γ = 2.2 |

`rawdrift.plots.stage_strip` runs one mosaic through a pipeline with `track_stages=True` and
shows every intermediate result (clipped to [0, 1] for display; SH is shown after converting back
to RGB). First a synthetic microscopy patch, developed with the configuration `bi,s,ga`:
"""),
        code("""
import numpy as np
import torch
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from rawdrift.data import get_dataset
from rawdrift.isp import CONFIGS, Pipeline, gradient_norms, parity_table
from rawdrift.plots import config_grid, markdown_table, stage_strip

micro = get_dataset("synthetic-microscopy", preset=PRESET)
drone = get_dataset("synthetic-drone", preset=PRESET)
raw_micro = micro[int(np.flatnonzero(micro.targets == micro.classes.index("EOS"))[0])][0]
raw_drone = drone[0][0]
print(micro.camera)
stage_strip(raw_micro, Pipeline.static("bi,s,ga", micro.camera));
"""),
        md("""
The raw image is grey with a fine grid: one colour per pixel. After demosaicing the colours
appear but look washed out and dark: the data are still *linear* in light. White balance and the
colour matrix fix the colours; gamma correction compresses the bright range the way displays and
eyes expect. A drone patch, with the Raw-Drone-like camera constants, developed with `ma,u,me`:
"""),
        code("""
stage_strip(raw_drone, Pipeline.static("ma,u,me", drone.camera));
"""),
        md("""
## Static and parametrized pipelines

The paper uses two kinds of data model.

- **Static** ($\\Phi_{Proc}^{stat}$): a fixed choice of algorithm per stage, with the camera's
  constants. `Pipeline.static(name, camera)` builds one of the 12 named configurations
  `dm,sh,dn`; nothing in it is trained.
- **Parametrized** ($\\Phi_{Proc}^{para}$): every continuous quantity is a learnable parameter:
  black level (4), demosaicing kernels (3 of 3×3), white balance (3), colour matrix (3×3),
  sharpening kernel (3×3), blur kernel (5×5) and γ. `Pipeline.parametrized(camera)` starts
  exactly at the static `bi,s,ga` configuration; training can then move it.

Both are the same `torch.nn.Module`, so they run batched on a CPU or GPU and compose with any
task model. Physical ranges (black level in [0, 1), positive gains, γ > 0) are enforced when the
pipeline runs, so an optimiser cannot push it into nonsense.
"""),
        code("""
para = Pipeline.parametrized(micro.camera)
for group, params in para.param_groups().items():
    print(f"{group}: {[tuple(p.shape) for p in params]}")
x = micro.raw_tensor(range(4))
with torch.no_grad():
    gap = (para(x) - Pipeline.static("bi,s,ga", micro.camera)(x)).abs().max().item()
print(f"parametrized at its defaults vs static bi,s,ga: max |difference| = {gap:.2e}")
"""),
        code("""
assert gap < 1e-5
""", tags=["remove-cell"]),
        md("""
## The 12 configurations

Three demosaicing methods × two sharpeners × two denoisers give the paper's 12 static
configurations. The differences between their views are small to the eye. `config_grid` shows
all 12 views of one microscopy patch (top row) and the absolute difference $|A - B|$ to the
`bi,s,ga` view for each colour channel (rows 2-4, one shared colour scale). Differences
concentrate at edges, where demosaicing and sharpening disagree most.
"""),
        code("""
config_grid(raw_micro, micro.camera, figsize_per=1.25);
"""),
        md("""
## Parity with the numpy reference

`rawdrift.isp.static.process_static` is a plain numpy implementation that calls the libraries
the paper names (colour-demosaicing, scikit-image, SciPy) one image at a time. It is slow but easy
to trust. The torch pipeline is fast and differentiable, and it must give the same views.
`parity_table` runs both on the same mosaic for all 12 configurations and reports the largest
and mean absolute difference over the view (values in [0, 1]); our tests require at most
$10^{-4}$ in float32.
"""),
        code("""
rows = parity_table(raw_micro, micro.camera)
display(Markdown(markdown_table(rows, ["config", "max_abs_error", "mean_abs_error"], floatfmt=".1e")))
"""),
        code("""
assert [r["config"] for r in rows] == list(CONFIGS)
assert max(r["max_abs_error"] for r in rows) < 1e-4
""", tags=["remove-cell"]),
        md("""
Getting there required care at the image borders: SciPy's default boundary mode `reflect`
repeats the edge pixel (d c b a | a b c d), whereas PyTorch's `F.pad(mode="reflect")` does not
(it is SciPy's `mirror`). `rawdrift.isp.filters` pads exactly like SciPy, and the sharpening
filter zero-fills its border as the authors' reference does.

## Gradients through the pipeline

Because every stage is differentiable, a loss computed on the view has a gradient with respect
to every ISP parameter. This is what the later chapters use: drift *forensics* asks which
parameters a task loss is most sensitive to, and drift *adjustment* trains the pipeline together
with the task model. Here the loss is simple: the negative contrast (standard deviation) of the
view. `gradient_norms` returns the L2 norm of the gradient for each parameter group. The groups
have different units and sizes, so compare a group between cameras rather than groups with each
other.
"""),
        code("""
norms = {"microscopy": gradient_norms(micro.raw_tensor(range(8)), micro.camera, "contrast"),
         "drone": gradient_norms(drone.raw_tensor(range(8)), drone.camera, "contrast")}
groups = list(norms["microscopy"])
fig, ax = plt.subplots(figsize=(6, 2.8))
for k, (name, g) in enumerate(norms.items()):
    ax.bar(np.arange(len(groups)) + 0.4 * k - 0.2, [g[c] for c in groups], width=0.4, label=name)
ax.set_xticks(range(len(groups)), groups)
ax.set_yscale("log")
ax.set_ylabel("|d loss / d params|")
ax.set_title("gradient of -std(view) per parameter group", fontsize=9)
ax.legend(fontsize=8);
""", tags=["hide-input"]),
        code("""
assert all(v > 0 and np.isfinite(v) for g in norms.values() for v in g.values())
""", tags=["remove-cell"]),
        md("""
## Two design choices worth knowing

**Sharpening and denoising act on luma only.** The paper's formulas read as if SH and DN
filtered all three YUV channels. The authors' released code filters only Y and passes U and V
through, which is also what camera ISPs usually do: detail lives in brightness, and filtering
chroma mostly smears colour. `rawdrift` follows the code (`channels="y"`, the default) and keeps
the formula as printed one argument away: `Pipeline.static(name, camera, channels="yuv")`.

**Defects of the reference code that we do not repeat** (they matter when comparing numbers):

- torch `reflect` padding where SciPy's `reflect` was meant, so borders differed between the
  static and the differentiable pipeline; we pad as SciPy does and test parity per configuration;
- unbounded parameters in the parametrized pipeline (gains, γ and black level could leave their
  physical range); we clamp to physical ranges inside `forward`;
- in forensics, an SSIM regulariser added with the wrong sign (chapter on forensics);
- common corruptions with CIFAR-10-C constants applied to 256 px images; we use ImageNet-C's
  (next chapter).

The gamma stage of the differentiable pipeline clips to $[10^{-5}, 1]$ and computes
$\\exp(\\log(v)/\\gamma)$, so the gradient with respect to γ stays finite at black pixels.

## Explorer: one pipeline, every knob

Pick the demosaicing, sharpening and denoising methods and move the black level, the red and blue
white-balance gains (as multiples of the camera's) and γ; the stage strip is re-rendered through
the torch ISP. The explorer needs a running Python kernel; the figure below it is its default
state, for readers of the static page.
"""),
        code("""
from rawdrift.widgets import explore_pipeline, pipeline_figure

explore_pipeline(raw_micro, micro.camera)
"""),
        code("""
pipeline_figure(raw_micro, micro.camera);
"""),
        md("""
Things to try: raise the black-level offset until the background turns coloured (dark channels
clip at zero first); set γ to 1 to see the linear data; swap `bi` for `me` and look at the
granules of the eosinophil.

## Summary

- A data model is the ISP written out: BL → DM → WB → CC → YUV → SH → DN → RGB → clip → GC.
- `Pipeline.static(name, camera)` gives the 12 configurations, `Pipeline.parametrized(camera)`
  the differentiable one, starting at `bi,s,ga`.
- The torch pipeline matches the numpy reference to about $10^{-6}$ on every configuration
  (`parity_table`), and every parameter receives a gradient (`gradient_norms`).
- Sharpening and denoising filter luma only, as in the authors' code; `channels="yuv"` gives the
  formula as printed.

**What's next:** [drift synthesis](04_synthesis.ipynb) trains task models on one configuration
and tests them on all the others.

**References:** {cite:t}`rawdrift_paper` (Section 4.2 and Appendix A.1 for the pipeline);
the colour-demosaicing, scikit-image and SciPy libraries for the reference stages.
"""),
    ],
)
