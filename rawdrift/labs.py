"""Self-checks for the lab exercises of the book (chapter ``07_labs``).

Each ``check_*`` function runs what a student wrote against the properties its
exercise asks for and returns a :class:`CheckResult`: a list of passed and
failed items, each failed item with the measured value and a hint. A check never
raises on a wrong input: whatever it is given (a wrong type, a module that
crashes, a file that is not raw) becomes a failed item with an explanation.

- :func:`check_tone_mapping`: a tone-mapping stage ``ToneMap(strength)`` for
  :meth:`rawdrift.isp.Pipeline.insert_stage`.
- :func:`check_linf_forensics`: a drift-forensics sweep under an l-infinity
  budget on the views (``ForensicsConfig(constraint="linf_view", epsilon=...)``).
- :func:`check_own_dng`: a raw file of your own (or the lab's stand-in DNG),
  read with :func:`rawdrift.raw.dng.read_raw` and developed by a static pipeline.

Helpers the exercises call: :func:`stage_drift` (a task model trained on the
default views, evaluated with a custom stage inserted at several strengths) and
:func:`standin_dng` (a synthetic sample written as a DNG, the default "your file").

>>> r = CheckResult("demo")
>>> r.ok("shape preserved"); r.fail("range", measured="max 1.3", hint="clamp to [0, 1]")
>>> r.passed, r.messages[1]
(False, 'FAIL range (measured: max 1.3). Hint: clamp to [0, 1]')
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Tolerances of the checks (absolute, on [0, 1] views).
TOL = {"range": 1e-6, "identity": 1e-5, "monotone": 1e-6, "change": 1e-3, "linf": 1e-4}


@dataclass
class CheckItem:
    """One verdict: ``status`` is ``"pass"``, ``"fail"`` or ``"note"`` (information only)."""

    status: str
    text: str
    measured: str = ""
    hint: str = ""

    def __str__(self) -> str:
        label = {"pass": "PASS", "fail": "FAIL", "note": "NOTE"}[self.status]
        s = f"{label} {self.text}"
        if self.measured:
            s += f" (measured: {self.measured})"
        if self.hint:
            s += f". Hint: {self.hint}"
        return s


@dataclass
class CheckResult:
    """The outcome of one self-check.

    Attributes:
        title: what was checked.
        items: the verdicts in the order they were reached.
        data: values the check computed that a notebook may want to show
            (e.g. the developed view of your DNG).
    """

    title: str
    items: list = field(default_factory=list)
    data: dict = field(default_factory=dict, repr=False)

    def ok(self, text: str, measured: str = "") -> None:
        self.items.append(CheckItem("pass", text, measured))

    def fail(self, text: str, measured: str = "", hint: str = "") -> None:
        self.items.append(CheckItem("fail", text, measured, hint))

    def note(self, text: str, measured: str = "") -> None:
        self.items.append(CheckItem("note", text, measured))

    @property
    def passed(self) -> bool:
        """``True`` when nothing failed and at least one property was verified."""
        return not self.failures and any(i.status == "pass" for i in self.items)

    @property
    def messages(self) -> list[str]:
        """Every verdict as one line of text."""
        return [str(i) for i in self.items]

    @property
    def failures(self) -> list[str]:
        """The failed verdicts only."""
        return [str(i) for i in self.items if i.status == "fail"]

    def __bool__(self) -> bool:
        return self.passed

    def _headline(self) -> str:
        n_pass = sum(i.status == "pass" for i in self.items)
        n_fail = len(self.failures)
        verdict = "all checks passed" if self.passed else f"{n_fail} problem(s) to fix"
        return f"{self.title}: {verdict} ({n_pass} passed, {n_fail} failed)"

    def __str__(self) -> str:
        return "\n".join([self._headline()] + ["  " + m for m in self.messages])

    def _repr_markdown_(self) -> str:
        icon = {"pass": "✅", "fail": "❌", "note": "ℹ️"}
        lines = [f"**{self._headline()}**", ""]
        for i in self.items:
            s = f"- {icon[i.status]} {i.text}"
            if i.measured:
                s += f" — measured: `{i.measured}`"
            if i.hint:
                s += f"  \n  *Hint:* {i.hint}"
            lines.append(s)
        return "\n".join(lines)


def _crash(res: CheckResult, what: str, err: BaseException, hint: str = "") -> None:
    """Record an exception raised by the student's code as a failed item (last frame only)."""
    tb = traceback.extract_tb(err.__traceback__)
    where = f" at line {tb[-1].lineno} of {Path(tb[-1].filename).name}" if tb else ""
    res.fail(f"{what} raised {type(err).__name__}: {err}{where}", hint=hint)


def _guarded(title: str, body, *args, **kwargs) -> CheckResult:
    """Run ``body(res, ...)``; an unexpected error of the check itself becomes a failed item."""
    res = CheckResult(title)
    try:
        body(res, *args, **kwargs)
    except Exception as err:  # the check must give feedback, never a traceback
        _crash(res, "the check", err, hint="this input could not be checked; see the message above")
    return res


def _fmt(x: float) -> str:
    return f"{x:.3g}"


# ----------------------------------------------------------------------------- exercise 1: tone mapping


def check_tone_mapping(tone_map, strengths=(0.25, 1.0, 4.0), identity_at: float = 0.0,
                       after: str = "gc") -> CheckResult:
    """Check a tone-mapping stage: ``tone_map(strength)`` must build an ``nn.Module``
    that maps ``(B, 3, H, W)`` views in [0, 1] to views in [0, 1] of the same shape,
    is the identity at ``strength == identity_at``, changes the image at the other
    ``strengths``, is monotone (a brighter input never gets darker), is
    differentiable in its input and in an ``nn.Parameter``, does not modify its
    input in place, and runs inside a static and a parametrized
    :class:`~rawdrift.isp.Pipeline` (inserted ``after`` that stage).

    Args:
        tone_map: the class (or any function ``strength -> nn.Module``).
        strengths: strengths at which the stage must change the image.
        identity_at: the strength at which it must be the identity.
        after: where the pipeline check inserts it (see :data:`rawdrift.isp.pipeline.INSERT_POINTS`).
    Returns:
        a :class:`CheckResult`; ``data`` holds ``max_change`` per strength.
    """
    return _guarded("Tone-mapping stage", _tone_mapping, tone_map, tuple(strengths), float(identity_at), after)


def _tone_mapping(res: CheckResult, tone_map, strengths, identity_at, after) -> None:
    if isinstance(tone_map, nn.Module):
        res.fail(f"you passed an instance ({type(tone_map).__name__}), not the class",
                 hint="pass the class itself, e.g. check_tone_mapping(ToneMap), so the check can build "
                      f"ToneMap({identity_at:g}) and ToneMap at other strengths")
        return
    if not callable(tone_map):
        res.fail(f"expected the ToneMap class, got a {type(tone_map).__name__}",
                 hint="define `class ToneMap(nn.Module)` and pass `ToneMap`")
        return
    modules = {}
    for s in (identity_at, *strengths):
        try:
            m = tone_map(s)
        except Exception as err:
            _crash(res, f"building ToneMap({s:g})", err, hint="the constructor should accept the strength as "
                                                               "its only argument")
            return
        if not isinstance(m, nn.Module):
            res.fail(f"ToneMap({s:g}) returned a {type(m).__name__}, not an nn.Module",
                     hint="subclass torch.nn.Module and implement forward(self, rgb)")
            return
        modules[s] = m
    res.ok(f"ToneMap(strength) builds an nn.Module at strengths {', '.join(f'{s:g}' for s in modules)}")

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=gen)
    x[0, :, 0, :4] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # the ends of the range appear
    outputs = {}
    for s, m in modules.items():
        xin = x.clone()
        try:
            with torch.no_grad():
                y = m(xin)
        except Exception as err:
            _crash(res, f"ToneMap({s:g})(rgb) on a (2, 3, 16, 16) batch", err,
                   hint="forward receives a (B, 3, H, W) tensor and must return one of the same shape")
            return
        if not isinstance(y, torch.Tensor):
            res.fail(f"ToneMap({s:g}) returned a {type(y).__name__}, not a torch.Tensor",
                     hint="use torch operations (torch.clamp, torch.pow, ...) on the input tensor")
            return
        if tuple(y.shape) != tuple(x.shape):
            res.fail(f"ToneMap({s:g}) changed the shape", measured=f"{tuple(x.shape)} -> {tuple(y.shape)}",
                     hint="a tone curve acts on each pixel; keep (B, 3, H, W)")
            return
        if not torch.equal(xin, x):
            res.fail(f"ToneMap({s:g}) modified its input in place",
                     hint="avoid in-place operations such as x.clamp_() or x *= ...; return a new tensor")
            return
        outputs[s] = y.detach().float()
    res.ok("output is a tensor of the input's shape; the input is left untouched")

    bad = {s: y for s, y in outputs.items() if not torch.isfinite(y).all()}
    if bad:
        s = next(iter(bad))
        res.fail(f"ToneMap({s:g}) produced NaN or inf", measured=f"{int((~torch.isfinite(bad[s])).sum())} values",
                 hint="guard divisions and logs, e.g. x.clamp_min(1e-6) before log or pow")
        return
    lo = min(float(y.min()) for y in outputs.values())
    hi = max(float(y.max()) for y in outputs.values())
    if lo < -TOL["range"] or hi > 1 + TOL["range"]:
        res.fail("the output leaves [0, 1]", measured=f"min {_fmt(lo)}, max {_fmt(hi)}",
                 hint="choose a curve with f(0) = 0 and f(1) = 1 that stays in between, or clamp the result")
    else:
        res.ok("output stays in [0, 1] at every strength", measured=f"min {_fmt(lo)}, max {_fmt(hi)}")

    err0 = float((outputs[identity_at] - x).abs().max())
    if err0 > TOL["identity"]:
        res.fail(f"ToneMap({identity_at:g}) is not the identity", measured=f"max |f(x) - x| = {_fmt(err0)}",
                 hint=f"at strength {identity_at:g} the curve must give back its input exactly")
    else:
        res.ok(f"ToneMap({identity_at:g}) is the identity", measured=f"max |f(x) - x| = {_fmt(err0)}")

    change = {s: float((outputs[s] - x).abs().max()) for s in strengths}
    res.data["max_change"] = change
    still = [s for s, c in change.items() if c <= TOL["change"]]
    if still:
        res.fail(f"ToneMap does nothing at strength {', '.join(f'{s:g}' for s in still)}",
                 measured=", ".join(f"max change {_fmt(change[s])}" for s in still),
                 hint="the strength should bend the curve: larger strength, larger change")
    else:
        res.ok("ToneMap changes the image at every other strength",
               measured=", ".join(f"{s:g}: {_fmt(c)}" for s, c in change.items()))

    ramp = torch.linspace(0, 1, 257).expand(1, 3, 1, 257).contiguous()
    worst = (0.0, None, None)
    for s, m in modules.items():
        try:
            with torch.no_grad():
                r = m(ramp.clone()).float()
        except Exception as err:
            _crash(res, f"ToneMap({s:g}) on a (1, 3, 1, 257) ramp", err)
            return
        step = r[..., 1:] - r[..., :-1]
        k = int(step.flatten().argmin())
        if float(step.min()) < worst[0]:
            worst = (float(step.min()), s, float(ramp[..., :-1].flatten()[k]))
    if worst[0] < -TOL["monotone"]:
        res.fail(f"ToneMap({worst[1]:g}) is not monotone: a brighter input gets a darker output",
                 measured=f"output falls by {_fmt(-worst[0])} just above input {worst[2]:.3f}",
                 hint="use an increasing curve (its derivative must be >= 0 on [0, 1])")
    else:
        res.ok("monotone on a 257-step ramp from 0 to 1 at every strength")

    s = strengths[0] if strengths else identity_at
    m = tone_map(s)
    xg = torch.cat([x, ramp.expand(2, 3, 16, 257)[..., :16]]).requires_grad_(True)
    try:
        y = m(xg)
        if isinstance(y, torch.Tensor) and y.requires_grad:
            y.float().sum().backward()
    except Exception as err:
        _crash(res, f"backward through ToneMap({s:g})", err,
               hint="use torch operations only (no numpy, no .item(), no .detach())")
        return
    if xg.grad is None:
        res.fail("no gradient reaches the input",
                 hint="the output must be computed from the input with torch operations (no numpy, .detach(), "
                      "torch.no_grad() or round)")
    elif not torch.isfinite(xg.grad).all():
        n = int((~torch.isfinite(xg.grad)).sum())
        res.fail("the gradient with respect to the input is NaN or inf", measured=f"{n} values (often at 0 or 1)",
                 hint="x ** p has an infinite slope at 0 for p < 1: clamp the base, e.g. x.clamp_min(1e-5)")
    elif float(xg.grad.abs().max()) == 0.0:
        res.fail("the gradient with respect to the input is zero everywhere",
                 hint="a hard clamp or a step function blocks gradients; use a smooth curve")
    else:
        res.ok("differentiable in its input (finite, non-zero gradient)")
    params = [p for p in m.parameters() if p.requires_grad]
    if not params:
        res.fail("ToneMap has no trainable nn.Parameter",
                 hint="store the strength as nn.Parameter(torch.tensor(float(strength))) so that gradient-based "
                      "drift controls (forensics, adjustment) can search or learn it")
    else:
        grads = [p.grad for p in params]
        if any(g is None for g in grads) or all(float(g.abs().max()) == 0.0 for g in grads):
            res.fail("the strength parameter gets no gradient",
                     hint="use the parameter in forward, e.g. with self.strength, not a plain float copy of it")
        elif not all(torch.isfinite(g).all() for g in grads):
            res.fail("the gradient of the strength is NaN or inf", hint="guard divisions and logs")
        else:
            res.ok("differentiable in its strength parameter",
                   measured=", ".join(f"{float(g.abs().sum()):.3g}" for g in grads))

    _tone_in_pipeline(res, tone_map, s, after)


def _tone_in_pipeline(res: CheckResult, tone_map, s: float, after: str) -> None:
    from .isp import Pipeline
    from .isp.camera import RAW_DRONE

    raw = 0.0625 + 0.5 * torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    try:
        static = Pipeline.static("bi,s,ga", RAW_DRONE).insert_stage(tone_map(s), after=after, name="tone").freeze()
        with torch.no_grad():
            v = static(raw)
        para = Pipeline.parametrized(RAW_DRONE).insert_stage(tone_map(s), after=after, name="tone")
        para(raw).mean().backward()
    except Exception as err:
        _crash(res, f"a Pipeline with ToneMap({s:g}) inserted after {after!r}", err,
               hint="the stage must accept the pipeline's (B, 3, H, W) float32 views")
        return
    own = [p.grad for n, p in para.named_parameters() if not n.startswith("extra.")]
    extra = [p.grad for n, p in para.named_parameters() if n.startswith("extra.") and p.grad is not None]
    if tuple(v.shape) != (2, 3, 16, 16) or not torch.isfinite(v).all() or float(v.min()) < -TOL["range"] \
            or float(v.max()) > 1 + TOL["range"]:
        res.fail("inside a Pipeline the views are wrong",
                 measured=f"shape {tuple(v.shape)}, min {_fmt(float(v.min()))}, "
                 f"max {_fmt(float(v.max()))}", hint="keep the shape and the [0, 1] range")
    elif any(g is None or not torch.isfinite(g).all() for g in own) or any(not torch.isfinite(g).all() for g in extra):
        res.fail("inside the parametrized Pipeline the ISP parameters get no or a non-finite gradient",
                 hint="your stage must pass gradients on to its input: check the slope of your curve at 0 and at 1")
    else:
        res.ok(f"runs inside static and parametrized Pipelines (inserted after {after!r}), gradients finite")


# ----------------------------------------------------------------------------- exercise 2: l-inf forensics


def check_linf_forensics(result, epsilon: float | None = 0.1, most_harmful: str | None = None,
                         tolerance: float = 0.1) -> CheckResult:
    """Check a drift-forensics sweep run under an l-infinity budget on the views.

    Args:
        result: a :class:`~rawdrift.drift.forensics.ForensicsResult`, the folder it
            was saved to, or (before running) the ``ForensicsConfig``.
        epsilon: the budget the exercise asks for (``None``: accept any).
        most_harmful: your answer to "which group hurt the model most?" (a group
            code such as ``"bl"``), checked against the sweep; ``None`` skips it.
        tolerance: how far (in metric units) a searched model may score above the
            clean one before the search is suspected of going the wrong way.
    Returns:
        a :class:`CheckResult`; ``data`` holds ``drops`` (largest drop per group)
        and ``linf`` (largest view change per group).
    """
    return _guarded("l-infinity forensics", _linf_forensics, result, epsilon, most_harmful, float(tolerance))


def _linf_forensics(res: CheckResult, result, epsilon, most_harmful, tolerance) -> None:
    from .drift.forensics import GROUPS, ForensicsConfig, ForensicsResult

    if isinstance(result, (str, Path)):
        path = Path(result)
        if not (path / "result.json").is_file():
            res.fail(f"no forensics result in {path}", hint="pass the object run_forensics returned, or its cfg.out "
                                                             "folder (it holds result.json)")
            return
        try:
            result = ForensicsResult.load(path)
        except Exception as err:
            res.fail(f"could not load the forensics result in {path}", measured=f"{type(err).__name__}: {err}",
                     hint="run the sweep again; the folder may be from an older rawdrift")
            return
    if isinstance(result, ForensicsConfig):
        _linf_config(res, result.constraint, result.epsilon, epsilon)
        res.fail("this is the configuration, not the result",
                 hint="run it first: result = run_forensics(cfg), then check_linf_forensics(result)")
        return
    if not isinstance(result, ForensicsResult):
        res.fail(f"expected the ForensicsResult returned by run_forensics, got a {type(result).__name__}",
                 hint="result = run_forensics(ForensicsConfig(..., constraint='linf_view', epsilon=...))")
        return
    cfg = result.config
    eps = _linf_config(res, cfg.get("constraint"), cfg.get("epsilon"), epsilon)
    if not result.records:
        res.fail("the result holds no (group, lambda) records", hint="give at least one group and two lambdas")
        return
    lams = sorted(set(result.lambdas))
    if len(lams) < 2 or 0.0 not in lams:
        res.fail("the sweep needs at least two lambdas, one of them 0", measured=f"lambdas {lams}",
                 hint="e.g. lambdas=(10.0, 0.0): lambda = 0 is the unconstrained search inside the budget")
    else:
        res.ok(f"lambda sweep over {len(lams)} values including 0", measured=", ".join(f"{x:g}" for x in lams))

    m = result.metric
    linf = {}
    for r in result.records:
        linf[r["group"]] = max(linf.get(r["group"], 0.0), float(r["linf"]))
    res.data["linf"] = linf
    if eps is not None:
        over = [r for r in result.records if float(r["linf"]) > eps + TOL["linf"]]
        if over:
            worst = max(over, key=lambda r: r["linf"])
            res.fail(f"{len(over)} of {len(result.records)} searched data models move a view pixel by more than "
                     f"epsilon = {eps:g}", measured=f"largest: {worst['group']} at lambda={worst['lambda']:g}, "
                                                    f"max |V - V~| = {_fmt(worst['linf'])}",
                     hint="run with constraint='linf_view' so the search is pulled back inside the budget")
        else:
            res.ok(f"every searched data model keeps max |V - V~| <= epsilon = {eps:g} at every lambda",
                   measured=", ".join(f"{g}: {_fmt(v)}" for g, v in linf.items()))

    clean = float(result.clean[m])
    above = [r for r in result.records if float(r[m]) > clean + tolerance]
    if above:
        r = max(above, key=lambda r: r[m])
        res.fail(f"the search raised the test {m} above the clean value", measured=f"{r['group']} at "
                 f"lambda={r['lambda']:g}: {r[m]:.3f} vs clean {clean:.3f}",
                 hint="forensics maximises the task loss; check that the task model was trained on the default "
                      "views and that lr is positive")
    else:
        res.ok(f"no searched data model scores above the clean {m} (+{tolerance:g})",
               measured=f"clean {clean:.3f}, worst {min(float(r[m]) for r in result.records):.3f}")

    drops = result.drops()
    res.data["drops"] = drops
    top = max(drops.values())
    if top <= 0:
        res.note(f"no group lowered the test {m} (clean {clean:.3f}) within this budget: the model is robust to "
                 "changes this small, or the search did not move (a larger epsilon, lr or more epochs)")
    if most_harmful is not None:
        if most_harmful not in GROUPS:
            res.fail(f"most_harmful: {most_harmful!r} is not a parameter group", hint=f"one of {GROUPS}")
        elif most_harmful not in drops:
            res.fail(f"most_harmful: group {most_harmful!r} was not in your sweep",
                     measured=f"groups {list(drops)}", hint="answer with one of the groups you searched")
        elif drops[most_harmful] < top - 1e-9:
            best = [g for g, d in drops.items() if d >= top - 1e-9]
            res.fail(f"{most_harmful!r} is not the most harmful group of your sweep",
                     measured=", ".join(f"{g}: drop {d:.3f}" for g, d in sorted(drops.items(), key=lambda t: -t[1])),
                     hint=f"read the largest drop per group: here {best[0]!r}")
        else:
            res.ok(f"{most_harmful!r} is the most harmful group of your sweep",
                   measured=f"drop {drops[most_harmful]:.3f}")
    else:
        res.note("largest drop per group: " + ", ".join(f"{g} {d:.3f}" for g, d in drops.items()))


def _linf_config(res: CheckResult, constraint, eps, wanted) -> float | None:
    if constraint != "linf_view":
        res.fail(f"the search ran with constraint {constraint!r}, not under an l-infinity budget",
                 hint="ForensicsConfig(..., constraint='linf_view', epsilon=...)")
    else:
        res.ok("constraint is 'linf_view' (an l-infinity budget on the views)")
    if eps is None:
        eps_used = 0.05 if constraint == "linf_view" else None
        if wanted is not None and eps_used != wanted:
            res.fail("epsilon was left at its default", measured=f"{eps_used}",
                     hint=f"the exercise asks for epsilon={wanted:g}")
        return eps_used if wanted is None else wanted
    eps = float(eps)
    if wanted is not None and abs(eps - wanted) > 1e-12:
        res.fail(f"epsilon is {eps:g}, the exercise asks for {wanted:g}", hint=f"set epsilon={wanted:g}")
        return min(eps, wanted)
    res.ok(f"epsilon = {eps:g}")
    return eps


# ----------------------------------------------------------------------------- exercise 3: your own DNG


def check_own_dng(source, config: str = "bi,s,ga", max_side: int = 256, camera=None) -> CheckResult:
    """Check that a raw file (or mosaic) is usable by ``rawdrift``, and develop it.

    Args:
        source: a path to a DNG (or any raw file LibRaw reads), a
            :class:`~rawdrift.raw.dng.RawImage`, or a mosaic array/tensor ``(H, W)``
            or ``(1, H, W)`` in [0, 1] (RGGB, metadata from ``camera``).
        config: the static ISP configuration to develop it with.
        max_side: the centre crop developed (even offsets keep the pattern).
        camera: the :class:`~rawdrift.isp.Camera` used for a bare array
            (default: the Raw-Drone constants).
    Returns:
        a :class:`CheckResult`; ``data`` holds ``image`` (the RawImage, RGGB),
        ``camera`` and ``view`` (``(3, h, w)`` developed crop) when they exist.
    """
    return _guarded("Your raw file", _own_dng, source, config, int(max_side), camera)


def _own_dng(res: CheckResult, source, config, max_side, camera) -> None:
    from .isp import Pipeline
    from .isp.camera import RAW_DRONE, Camera
    from .isp.configs import CONFIGS
    from .raw.cfa import PATTERNS
    from .raw.dng import RawImage, read_raw

    if config not in CONFIGS:
        res.fail(f"config: {config!r} is not one of the 12 configurations", hint=f"one of {CONFIGS}")
        return
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            res.fail(f"no file at {path}", hint="check the path (absolute, or relative to the notebook's folder)")
            return
        try:
            image = read_raw(path)
        except Exception as err:
            res.fail(f"rawpy/LibRaw cannot read {path.name} as a Bayer raw file",
                     measured=f"{type(err).__name__}: {err}",
                     hint="use the camera's raw file (DNG, NEF, CR2, ARW, ...), not a JPEG/PNG/TIFF export; "
                          "X-Trans and linear (demosaiced) DNGs are not Bayer mosaics")
            return
        res.ok(f"read {path.name} with rawdrift.raw.dng.read_raw", measured=f"{image.model}, "
               f"{image.shape[0]}x{image.shape[1]}, file pattern {image.source_pattern}")
    elif isinstance(source, RawImage):
        image = source
        res.ok("got a RawImage", measured=f"{image.shape[0]}x{image.shape[1]}")
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        arr = torch.as_tensor(np.asarray(source) if isinstance(source, np.ndarray) else source.detach().cpu())
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2:
            res.fail("a mosaic array must be (H, W) or (1, H, W)", measured=f"shape {tuple(arr.shape)}",
                     hint="a raw mosaic has one value per pixel; an (H, W, 3) image is already developed")
            return
        cam = camera if camera is not None else RAW_DRONE
        if not isinstance(cam, Camera):
            res.fail(f"camera: expected a rawdrift Camera, got {type(cam).__name__}")
            return
        res.note(f"a bare array carries no metadata: using the black level, white balance and matrix of {cam.name!r}")
        image = RawImage(raw=arr.float()[None], pattern=cam.pattern, black_level=tuple(cam.black_level),
                         white_level=65535, white_balance=tuple(cam.white_balance),
                         color_matrix=tuple(tuple(r) for r in cam.color_matrix), model="array")
    else:
        res.fail(f"expected a file path, a RawImage or a mosaic array, got a {type(source).__name__}",
                 hint="read the file with read_raw(path), or pass the path itself")
        return

    raw = image.raw
    h, w = raw.shape[-2:]
    if h % 2 or w % 2 or h < 16 or w < 16:
        res.fail("the mosaic needs even height and width of at least 16", measured=f"{h}x{w}",
                 hint="crop one row/column: raw[..., : h - h % 2, : w - w % 2]; whole 2x2 Bayer tiles only")
        return
    res.ok("whole 2x2 Bayer tiles (even height and width)", measured=f"{h}x{w}")
    if image.pattern not in PATTERNS:
        res.fail(f"unknown CFA pattern {image.pattern!r}", hint=f"rawdrift handles the Bayer patterns {PATTERNS}")
        return
    res.ok(f"Bayer pattern {image.pattern} is known", measured=f"file: {image.source_pattern or image.pattern}")
    if not torch.isfinite(raw).all():
        res.fail("the mosaic holds NaN or inf", measured=f"{int((~torch.isfinite(raw)).sum())} values")
        return
    lo, hi = float(raw.min()), float(raw.max())
    if lo < 0 or hi > 1:
        res.fail("raw values must be normalised to [0, 1]", measured=f"min {_fmt(lo)}, max {_fmt(hi)}",
                 hint="divide the counts by the white level (read_raw does this)")
        return
    res.ok("raw values are finite and in [0, 1]", measured=f"min {_fmt(lo)}, max {_fmt(hi)}")
    if not (isinstance(image.white_level, (int, np.integer)) and image.white_level > 0):
        res.fail("the white level must be a positive count", measured=repr(image.white_level))
    else:
        res.ok(f"white level {image.white_level} counts")

    bl = [float(b) for b in image.black_level]
    median = float(raw.median())
    if len(bl) != 4 or not all(math.isfinite(b) and 0 <= b < 0.5 for b in bl):
        res.fail("black levels must be 4 values in [0, 0.5) of the white level", measured=f"{bl}",
                 hint="check the file's BlackLevel tag; black level above half the range means a broken file")
    elif max(bl) >= median:
        res.fail("the black level is not below the typical pixel: the image would develop almost black",
                 measured=f"black level {max(bl):.4f} vs median raw value {median:.4f}",
                 hint="pick a properly exposed photo, or check the BlackLevel tag")
    else:
        res.ok("black level is sane (below the median pixel)",
               measured=f"{[round(b, 5) for b in bl]}, median {median:.4f}")
    sat = float((raw >= 0.999).float().mean())
    if sat > 0.25:
        res.note(f"{sat:.0%} of the pixels are saturated: the photo is overexposed")
    wb = [float(g) for g in image.white_balance]
    if len(wb) != 3 or not all(math.isfinite(g) and g > 0 for g in wb):
        res.fail("white-balance gains must be 3 finite positive values", measured=f"{wb}")
        return
    res.ok("white-balance gains are positive", measured=f"{[round(g, 3) for g in wb]} ({image.white_balance_source})")
    cm = np.asarray(image.color_matrix, dtype=float)
    if cm.shape != (3, 3) or not np.isfinite(cm).all():
        res.fail("the colour matrix must be a finite 3x3 matrix", measured=f"shape {cm.shape}")
        return
    if image.matrix_source == "none":
        res.note("the file has no colour matrix: the identity is used (colours will be off)")
    try:
        cam = image.camera()
    except Exception as err:
        _crash(res, "building the Camera of this file", err)
        return
    res.data["image"], res.data["camera"] = image, cam

    ch, cw = min(h, max_side) // 2 * 2, min(w, max_side) // 2 * 2
    oy, ox = (h - ch) // 4 * 2, (w - cw) // 4 * 2
    crop = raw[..., oy : oy + ch, ox : ox + cw].reshape(1, 1, ch, cw).float()
    try:
        with torch.no_grad():
            view = Pipeline.static(config, cam)(crop)[0]
    except Exception as err:
        _crash(res, f"Pipeline.static({config!r}, camera)", err)
        return
    if not torch.isfinite(view).all():
        res.fail(f"the {config} view holds NaN or inf", measured=f"{int((~torch.isfinite(view)).sum())} values")
        return
    res.data["view"] = view
    res.ok(f"developed a {ch}x{cw} centre crop with Pipeline.static({config!r}) without NaN",
           measured=f"view mean {float(view.mean()):.3f}")


# ----------------------------------------------------------------------------- helpers the exercises call


@dataclass
class StageDrift:
    """Test metric of a task model trained on default views, with a custom stage at several strengths.

    ``scores[i]`` belongs to ``strengths[i]``; ``views[i]`` is the first test
    image developed with that strength (uint8 ``(H, W, 3)``), ``clean_view`` without the stage.
    """

    metric: str
    clean: float
    strengths: list
    scores: list
    views: list = field(repr=False, default_factory=list)
    clean_view: np.ndarray | None = field(repr=False, default=None)

    def to_markdown(self) -> str:
        rows = [f"| strength | test {self.metric} | change |", "|---|---|---|",
                f"| none (default views) | {self.clean:.3f} | - |"]
        rows += [f"| {s:g} | {v:.3f} | {v - self.clean:+.3f} |" for s, v in zip(self.strengths, self.scores)]
        return "\n".join(rows)

    def plot(self):
        """Metric against strength, and the first test image at each strength."""
        import matplotlib.pyplot as plt

        k = len(self.views)
        fig = plt.figure(figsize=(3.2 + 1.6 * (k + 1), 2.6))
        grid = fig.add_gridspec(1, k + 3)
        ax = fig.add_subplot(grid[0, :2])
        ax.plot(self.strengths, self.scores, "o-", label="with the stage")
        ax.axhline(self.clean, color="k", ls="--", lw=0.8, label="default views")
        ax.set_xlabel("strength")
        ax.set_ylabel(f"test {self.metric}")
        ax.legend(fontsize=7)
        for j, (title, img) in enumerate([("default", self.clean_view)] +
                                         [(f"strength {s:g}", v) for s, v in zip(self.strengths, self.views)]):
            a = fig.add_subplot(grid[0, 2 + j])
            a.imshow(img)
            a.set_title(title, fontsize=8)
            a.axis("off")
        fig.tight_layout()
        return fig


def _uint8(view) -> np.ndarray:
    return (view.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def stage_drift(stage, strengths=(0.5, 1.0, 2.0, 4.0), *, dataset: str = "synthetic-microscopy", preset=None,
                n: int | None = None, epochs: int | None = None, after: str = "gc", config: str = "bi,s,ga",
                model_path=None, seed: int = 0, device: str = "auto", **train) -> StageDrift:
    """Drift under a custom stage: train on default views, test with ``stage(strength)`` inserted.

    A task model is trained on the first fold of ``dataset`` developed by
    ``Pipeline.static(config, camera)`` (or loaded from ``model_path`` when that
    file exists; written there otherwise), then evaluated on the held-out fold
    with ``stage(strength)`` inserted ``after`` the given stage, for every strength.

    Args:
        stage: a class or function ``strength -> nn.Module`` (e.g. your ``ToneMap``).
        strengths: the strengths to test.
        dataset, preset, n, seed: as in :func:`rawdrift.data.get_dataset`.
        epochs: task-model epochs (preset ``epochs``).
        after, config: where the stage goes, and the static configuration.
        model_path: cache of the task model's state dict.
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        train: further :class:`~rawdrift.train.TrainConfig` fields (e.g. ``batch_size``, ``lr``).
    """
    from . import train as T
    from .data import get_dataset
    from .data.base import stratified_kfold
    from .device import pick_device
    from .io import atomic_path
    from .isp import Pipeline
    from .presets import get_preset

    if not callable(stage) or isinstance(stage, nn.Module):
        raise TypeError(f"stage: expected a class or function strength -> nn.Module, got {type(stage).__name__}")
    strengths = [float(s) for s in strengths]
    if not strengths:
        raise ValueError("strengths: expected at least one value")
    dev = pick_device(device)
    ds = get_dataset(dataset, preset=preset, seed=seed, **({"n": n} if n else {}))
    cfg = T.TrainConfig(**{"progress": False, **train, "task": ds.task, "preset": preset, "epochs": epochs,
                           "seed": seed, "device": str(dev)}).resolved(ds.task)
    tr, te = stratified_kfold(ds.targets, get_preset(preset).folds, seed)[0]
    base = Pipeline.static(config, ds.camera, device=dev)
    model = T.build_task_model(cfg, len(getattr(ds, "classes", ())) or 1).to(dev)
    path = Path(model_path) if model_path else None
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path, map_location=dev, weights_only=True))
    else:
        res = T.fit(model, base, (ds, tr), (ds, te), cfg)
        model.load_state_dict(res.model_state)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save(res.model_state, tmp)
    metric = "accuracy" if ds.task == "classification" else "iou"
    clean = float(T.evaluate(model, base, (ds, te), cfg)[metric])
    raw0 = ds.raw_tensor([int(te[0])]).to(dev)
    with torch.no_grad():
        clean_view = _uint8(base(raw0)[0])
    scores, views = [], []
    for s in strengths:
        pipe = Pipeline.static(config, ds.camera, device=dev).insert_stage(stage(s), after=after, name="stage").freeze()
        scores.append(float(T.evaluate(model, pipe, (ds, te), cfg)[metric]))
        with torch.no_grad():
            views.append(_uint8(pipe(raw0)[0]))
    return StageDrift(metric, clean, strengths, scores, views, clean_view)


def standin_dng(path, dataset: str = "synthetic-drone", index: int = 0, preset=None, seed: int = 0,
                n: int | None = 8) -> Path:
    """Write sample ``index`` of a synthetic dataset as a DNG with its camera's metadata (the lab's default file).

    ``n`` patches are generated (``None``: the preset's count); the patch size is the preset's.

    >>> import tempfile
    >>> p = standin_dng(Path(tempfile.mkdtemp()) / "standin.dng", preset="ci")
    >>> check_own_dng(p).passed
    True
    """
    from .data import get_dataset
    from .raw.dng import write_dng

    ds = get_dataset(dataset, preset=preset, seed=seed, **({"n": n} if n else {}))
    raw = ds.raw_tensor([index])[0, 0]
    cam = ds.camera
    return write_dng(path, raw, pattern=cam.pattern, black_level=tuple(cam.black_level),
                     white_balance=tuple(cam.white_balance),
                     color_matrix=cam.color_matrix, camera_model=f"rawdrift {dataset}")


__all__ = ["CheckItem", "CheckResult", "StageDrift", "TOL", "check_linf_forensics", "check_own_dng",
           "check_tone_mapping", "stage_drift", "standin_dng"]
