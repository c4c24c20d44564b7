"""Author notebooks/02_raw_data.ipynb."""

from tools.notebook import code, md, setup_cell, write_notebook

write_notebook(
    "notebooks/02_raw_data.ipynb",
    [
        md("""
# Raw data: what a camera sensor records

Every image model in this book starts from **raw sensor data**: the counts a camera's pixels
recorded before any image processing. This chapter builds that measurement from physics, with
the sensor model and the two synthetic datasets that `rawdrift` ships as its default data.

**The data in this chapter are synthetic.** They are rendered from physical models that mimic the
paper's Raw-Microscopy (white blood cells under a bright-field microscope) and Raw-Drone (cars
seen from 250 m) datasets; they are not those datasets. The real ones load through the same
interface (`get_dataset("raw-microscopy", root=...)`) when you have them on disk.

**You will be able to**

- explain what a raw pixel value means: photons, electrons, black level, 16-bit counts;
- read a Bayer (RGGB) mosaic;
- predict shot and read noise at any light level with a photon transfer curve;
- generate, cache and look at the synthetic microscopy and drone datasets, at any raw intensity.

| prerequisite | importance | where |
|---|---|---|
| tensors and arrays (PyTorch or NumPy) | necessary | [PyTorch tutorials](https://pytorch.org/tutorials/) |
| Poisson and Gaussian distributions | helpful | any probability primer |
| Getting started chapter | helpful | [01_getting_started](01_getting_started.ipynb) |

| preset | run time (2 CPU cores) |
|---|---|
| `ci` | a few seconds |
| `lab` | about half a minute the first time (datasets are generated and cached), seconds after |
| `paper` | a few minutes the first time (256 px patches) |
"""),
        setup_cell(),
        md("""
## From light to counts: the sensor model

A pixel collects **photons** during the exposure. A fraction of them, the *quantum efficiency*
(QE, which includes the colour filter above the pixel), frees an electron each. Photon arrival is
random, so the electron count is Poisson distributed: its variance equals its mean (**shot
noise**). Reading the charge out adds Gaussian **read noise**; an amplifier and an
analogue-to-digital converter turn electrons into data numbers (DN) with a *gain*, on top of a
constant **black level** offset, and the result is quantised to 16 bits and clipped. A pixel can
hold only so many electrons, its *full well*.

`rawdrift.raw.sensor.SensorModel` implements exactly this chain. The value the paper calls
$x_{RAW}$ is the 16-bit count divided by $2^{16}-1$, so it lies in $[0, 1]$.
"""),
        code("""
import numpy as np
import torch
import matplotlib.pyplot as plt
from rawdrift.raw.sensor import MICROSCOPY_SENSOR, DRONE_SENSOR, INTENSITY_LEVELS, photon_transfer

sensor = MICROSCOPY_SENSOR
print(sensor)
print("black level (normalised):", sensor.black_level_dn / 65535)
print("camera for development:", sensor.camera())
"""),
        md("""
## The Bayer mosaic

A sensor pixel measures brightness, not colour. A **colour filter array** puts a red, green or
blue filter over each pixel in a repeating 2×2 tile; RGGB has red at the top left, two greens on
the diagonal and blue at the bottom right. The raw image is therefore a single-channel grey image
with a fine grid texture, and colour is recovered later by *demosaicing*.
"""),
        code("""
from rawdrift.raw.cfa import cfa_masks

masks = cfa_masks(8, 8, "RGGB")
fig, ax = plt.subplots(figsize=(2.5, 2.5))
ax.imshow(masks.permute(1, 2, 0).numpy(), interpolation="nearest")
ax.set_title("RGGB colour filter array, 8x8 pixels", fontsize=9)
ax.axis("off");
""", tags=["hide-input"]),
        md("""
## Shot noise and read noise: the photon transfer curve

Scaling the light (shorter exposure, dimmer lamp) scales the **expected number of electrons**;
the noise follows from physics. `rawdrift` therefore implements the paper's raw intensity levels
(1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, and 0.001 for the drift adjustment chapter) by scaling
the photon budget *before* noise is drawn, never by darkening a finished image.

The photon transfer curve plots the variance of flat fields against their mean signal. Where
shot noise dominates, variance grows linearly with the signal (slope = gain); at very low
signal, read noise sets a floor. Dots are measured from simulated captures, lines are the
analytic model (`expected_mean`, `expected_variance`).
"""),
        code("""
levels = np.geomspace(2e-4, 1.0, 14)
ptc = photon_transfer(sensor, levels, size=64, generator=torch.Generator().manual_seed(0))
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(ptc["signal"], ptc["variance"], "o", label="measured (simulated captures)")
ax.loglog(ptc["signal_model"], ptc["variance_model"], "-", label="model: gain^2 (mu + read^2) + q^2/12")
for v in INTENSITY_LEVELS + (0.001,):
    ax.axvline(v * sensor.gain_dn_per_e * sensor.photons * sensor.qe[1] * 0.9, color="grey", lw=0.5, alpha=0.5)
ax.set_xlabel("signal above black level (DN)")
ax.set_ylabel("variance (DN$^2$)")
ax.set_title("photon transfer, green pixels; grey: background at each intensity", fontsize=9)
ax.legend(fontsize=8);
""", tags=["hide-input"]),
        code("""
ok = ptc["signal_model"] > 1
assert np.allclose(ptc["variance"][ok], ptc["variance_model"][ok], rtol=0.15)
assert np.allclose(ptc["signal"][ok], ptc["signal_model"][ok], rtol=0.05, atol=1.0)
""", tags=["remove-cell"]),
        md("""
Signal-to-noise ratio at the background of a microscopy image falls with the square root of the
light: at intensity 0.01 there is 100 times less signal but only 10 times less noise.
"""),
        code("""
bg = 0.9 * sensor.photons * sensor.qe[1]  # expected electrons of the background at intensity 1
for v in INTENSITY_LEVELS + (0.001,):
    mu = v * bg
    snr = mu / np.sqrt(mu + sensor.read_noise_e ** 2)
    print(f"intensity {v:>6g}: {mu:9.1f} e-,  SNR {snr:6.1f}")
"""),
        md("""
## Synthetic microscopy

`SyntheticMicroscopy` renders single white blood cells as a bright-field microscope sees them:
light passes through stained cells and is absorbed following Beer-Lambert's law, each stain
(nuclear purple, cytoplasm blue or pink, eosinophil orange and basophil purple granules, the
red-pink of red blood cells) with its own absorbance per colour channel. The image is blurred by
the microscope's point-spread function, sampled through the RGGB filters and recorded by the
sensor model. The 9 classes carry the paper's names and proportions, and each has its own
morphology (for instance LYT: small round dense nucleus; MON: large kidney-shaped nucleus; NGS:
segmented nucleus; KSC: smudge cell). The views below use `quick_view`, a simple fixed
development for looking at data, not one of the paper's 12 processing pipelines.
"""),
        code("""
from rawdrift.data import get_dataset
from rawdrift.raw.preview import contact_sheet, intensity_ladder, quick_view

micro = get_dataset("synthetic-microscopy", preset=PRESET)
print(micro, "| cache:", micro.cache_path.name, "| classes:", micro.classes)
print("samples per class:", dict(zip(micro.classes, np.bincount(micro.targets, minlength=9).tolist())))
one_per_class = [int(np.flatnonzero(micro.targets == c)[0]) for c in range(len(micro.classes))]
contact_sheet(micro, indices=one_per_class, columns=9);
"""),
        code("""
raw, label, meta = micro[0]
assert raw.shape == (1, preset.raw_size, preset.raw_size) and raw.dtype == torch.float32
assert 0 <= raw.min() and raw.max() <= 1
assert set(np.unique(micro.targets)) == set(range(9))
""", tags=["remove-cell"]),
        md("""
A raw patch itself, before any processing: grey, with the mosaic's grid visible where colours
differ, and the black level as the floor of the histogram.
"""),
        code("""
fig, axes = plt.subplots(1, 2, figsize=(7, 3))
axes[0].imshow(raw[0].numpy(), cmap="gray", interpolation="nearest")
axes[0].set_title(f"raw mosaic ({meta['class_name']})", fontsize=9)
axes[0].axis("off")
axes[1].hist(raw.flatten().numpy(), bins=100, color="k")
axes[1].axvline(micro.camera.black_level[0], color="r", label="black level")
axes[1].set_xlabel("normalised raw value")
axes[1].legend(fontsize=8)
fig.tight_layout();
""", tags=["hide-input"]),
        md("""
## Synthetic drone

`SyntheticDrone` renders top-down 6 cm ground-sampling patches: grass, soil, concrete and asphalt
textures, roads with markings, parking lots, trees, and cars (4.5 m × 1.8 m, about 75 × 30 pixels
at 256 px) with windows and shadows. Its target is the exact binary car mask, drawn in yellow.
The optics blur the radiance with the paper's measured PSF (σ ≈ 2.5 px); the mask is not blurred.
Its sensor follows the paper's drone camera: 12-bit values left-justified to 16 bits, a gain of
8.448 DN per electron and a black level of 0.0625.
"""),
        code("""
drone = get_dataset("synthetic-drone", preset=PRESET)
print(drone, "| patches with cars:", int(drone.targets.sum()), "of", len(drone))
contact_sheet(drone, n=16);
"""),
        code("""
_, mask, m = drone[0]
assert mask.shape == (1, preset.raw_size, preset.raw_size) and set(mask.unique().tolist()) <= {0.0, 1.0}
assert drone.targets.mean() > 0.7
""", tags=["remove-cell"]),
        md("""
## An intensity ladder

The same scene captured with less and less light. Intensity variants of a synthetic dataset
(`get_dataset(..., intensity=0.01)`) share the scenes of the full-intensity data and differ only
in the capture. Top: developed at a fixed exposure. Bottom: each view stretched to its own range,
which reveals the noise that dominates at 0.01 and 0.001.
"""),
        code("""
fig, ladder = intensity_ladder(micro, index=one_per_class[micro.classes.index("EOS")])
"""),
        code("""
bl = micro.camera.black_level[0]
signal = (ladder.mean(dim=(1, 2, 3)) - bl).numpy()
assert np.allclose(signal / signal[0], list(INTENSITY_LEVELS) + [0.001], rtol=0.05, atol=2e-4)
""", tags=["remove-cell"]),
        md("""
## Explorer: one scene, any light level

Pick a sample (one per class) and an intensity; the explorer shows the raw mosaic, its
development at a fixed exposure and the same development stretched to its own range, where the
noise becomes visible. Captures are drawn once and cached, so the explorer responds at once. It
needs a running Python kernel; the figure below it is its default state (the first sample at full
intensity), for readers of the static page.
"""),
        code("""
from rawdrift.widgets import explore_raw, raw_capture_figure

explore_raw(micro, indices=one_per_class)
"""),
        code("""
raw_capture_figure(micro, one_per_class[0], 1.0);
""", tags=["hide-input"]),
        md("""
## Summary

- A raw pixel value is a 16-bit count: gain × (electrons + read noise) + black level, normalised by 65535.
- The Bayer mosaic samples one colour per pixel; colour comes back through demosaicing (next chapter).
- Darker captures have fewer photons; shot noise makes their relative noise grow as 1/√intensity,
  so `rawdrift` scales the photon budget before noise, never a finished image.
- `get_dataset("synthetic-microscopy" | "synthetic-drone", preset=..., intensity=...)` gives
  deterministic, cached raw datasets; `rawdrift data preview --dataset ... --out sheet.png`
  writes the same contact sheets from the command line.

**What's next:** the image signal processing pipeline that turns these mosaics into the views
task models see.

**References:** the paper's datasets section and appendix (Raw-Microscopy, Raw-Drone, intensity
variants); J. Janesick, *Photon Transfer* (SPIE Press, 2007) for the photon transfer method.
"""),
    ],
)
