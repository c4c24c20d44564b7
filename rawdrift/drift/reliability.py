"""Reliability maps: where in a box of drift parameters a task model stays reliable.

After Nguyen, Gupta, Do and Venkatesh, *Predicting the Reliability of an Image
Classifier under Image Distortion*, applied to physically faithful drift: the
axes of the box are continuous sensor/ISP parameters (exposure gain, white
balance, gamma, black level, sharpening, blur, ...) instead of ad-hoc
distortions.

The core is independent of torch models. An *oracle* ``f(C) -> values`` maps
points ``C`` of shape ``(n, d)`` in a :class:`ParameterBox` to a metric of the
task model (e.g. accuracy on a verification set rendered with those
parameters). A point is *reliable* iff ``f(c) >= h``. The rarer of the two
labels is the *minority* (positive) class; in the paper it is the reliable side.

Steps, each a plain function:

1. ground truth on a dense grid (:func:`evaluate_grid`, cached and resumable);
2. sampling under a budget: :func:`random_sampling` and GP-based
   :func:`gp_sampling` (acquisition ``q = beta*sigma + (mu - h)``);
3. rebalancing the sampled labels (:func:`rebalance`: none, random
   over-sampling, SMOTE, BorderlineSMOTE, ADASYN, and the paper's SMOTE-GP);
4. a *distortion classifier* trained on the (rebalanced) samples and scored on
   the dense grid (:func:`make_classifier`, :func:`classification_metrics`);
5. :func:`run_reliability` ties it together into a Table-3-style comparison.

scikit-learn and imbalanced-learn are optional dependencies (extra
``reliability``); they are imported only inside the functions that need them.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .._checks import check_choice, check_int, check_range
from ..io import read_json, write_json, write_npz, write_text
from ._results import read_result, write_result

Oracle = Callable[[np.ndarray], np.ndarray]

SAMPLERS = ("random", "gp")
#: Extra sampler not in the paper: GP sampling with the boundary-seeking "straddle" acquisition.
EXTRA_SAMPLERS = ("gp_straddle",)
REBALANCERS = ("none", "random_over", "smote", "borderline_smote", "adasyn", "smote_gp")
CLASSIFIERS = ("decision_tree", "random_forest", "logistic_regression", "svm", "mlp")
SYNTHETIC_TRUTH = ("exact", "grid")
METRICS = ("f1", "precision", "recall", "balanced_accuracy")


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "reliability maps need scikit-learn and imbalanced-learn: pip install 'rawdrift[reliability]'"
        ) from err


# ---------------------------------------------------------------------------------------------
# 1. The box of drift parameters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ParameterBox:
    """An axis-aligned box of ``d`` named drift parameters, ``low[i] <= c[i] <= high[i]``.

    Samplers, GPs and classifiers work on the box scaled to ``[0, 1]^d`` so that
    one length scale means the same on every axis.

    >>> box = ParameterBox(("gamma", "blur"), (1.0, 0.0), (3.0, 2.0))
    >>> box.scale([[2.0, 0.5]]).tolist()
    [[0.5, 0.25]]
    >>> box.grid(3).shape
    (9, 2)
    """

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    def __post_init__(self):
        if isinstance(self.names, str) or not all(isinstance(n, str) and n for n in self.names):
            raise ValueError(f"names: expected a sequence of non-empty strings, got {self.names!r}")
        names = tuple(self.names)
        if len(names) == 0:
            raise ValueError("names: expected at least one parameter name")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"names: expected unique names, got duplicates {dup}")
        low = np.asarray(self.low, dtype=np.float64).reshape(-1)
        high = np.asarray(self.high, dtype=np.float64).reshape(-1)
        for arr, nm in ((low, "low"), (high, "high")):
            if arr.shape != (len(names),):
                raise ValueError(f"{nm}: expected {len(names)} values (one per name), got {arr.size}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{nm}: expected finite values, got {arr.tolist()}")
        if not (low < high).all():
            bad = [n for n, lo, hi in zip(names, low, high) if not lo < hi]
            raise ValueError(f"low, high: expected low < high on every axis, violated for {bad}")
        low.flags.writeable = False
        high.flags.writeable = False
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def d(self) -> int:
        """Number of parameters (dimensions)."""
        return len(self.names)

    def _points(self, c, name: str) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 1 and c.shape[0] == self.d:
            c = c[None]
        if c.ndim != 2 or c.shape[1] != self.d:
            raise ValueError(f"{name}: expected an array (n, {self.d}), got shape {c.shape}")
        if not np.isfinite(c).all():
            raise ValueError(f"{name}: expected finite values")
        return c

    def scale(self, c) -> np.ndarray:
        """Map points ``(n, d)`` of the box to ``[0, 1]^d``."""
        c = self._points(c, "c")
        return (c - self.low) / (self.high - self.low)

    def unscale(self, u) -> np.ndarray:
        """Map points ``(n, d)`` of ``[0, 1]^d`` back to the box."""
        u = self._points(u, "u")
        return self.low + u * (self.high - self.low)

    def axes(self, points_per_dim) -> list[np.ndarray]:
        """The grid coordinates on each axis (``np.linspace`` from low to high)."""
        ppd = self._ppd(points_per_dim)
        return [np.linspace(lo, hi, n) for lo, hi, n in zip(self.low, self.high, ppd)]

    def _ppd(self, points_per_dim) -> tuple[int, ...]:
        if isinstance(points_per_dim, (int, np.integer)) and not isinstance(points_per_dim, bool):
            ppd = (int(points_per_dim),) * self.d
        else:
            ppd = tuple(points_per_dim)
        if len(ppd) != self.d:
            raise ValueError(f"points_per_dim: expected an int or {self.d} ints, got {points_per_dim!r}")
        for n in ppd:
            check_int(n, "points_per_dim", minimum=2)
        return ppd

    def grid_shape(self, points_per_dim) -> tuple[int, ...]:
        return self._ppd(points_per_dim)

    def grid(self, points_per_dim) -> np.ndarray:
        """Every point of the dense grid, ``(prod(points_per_dim), d)``, first axis slowest (C order)."""
        mesh = np.meshgrid(*self.axes(points_per_dim), indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1)

    def sample(self, n: int, rng=None) -> np.ndarray:
        """``n`` points drawn uniformly from the box, ``(n, d)``."""
        check_int(n, "n", minimum=0)
        return self.unscale(_rng(rng).random((n, self.d))) if n else np.zeros((0, self.d))

    def to_dict(self) -> dict:
        return {"names": list(self.names), "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "ParameterBox":
        return cls(tuple(d["names"]), d["low"], d["high"])

    def __eq__(self, other):
        return (isinstance(other, ParameterBox) and self.names == other.names
                and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high))

    def __hash__(self):
        return hash((self.names, self.low.tobytes(), self.high.tobytes()))

    def __repr__(self):
        return f"ParameterBox(names={self.names}, low={self.low.tolist()}, high={self.high.tolist()})"


def _call_oracle(f: Oracle, c: np.ndarray) -> np.ndarray:
    if not callable(f):
        raise TypeError(f"f: expected a callable oracle f(C) -> values, got {type(f).__name__}")
    v = np.asarray(f(c), dtype=np.float64).reshape(-1)
    if v.shape != (len(c),):
        raise ValueError(f"f: the oracle returned {v.size} values for {len(c)} points")
    if not np.isfinite(v).all():
        raise ValueError("f: the oracle returned non-finite values")
    return v


# ---------------------------------------------------------------------------------------------
# 2. Ground truth on a dense grid, labels
# ---------------------------------------------------------------------------------------------


def evaluate_grid(f: Oracle, box: ParameterBox, points_per_dim, cache_path=None,
                  chunk_size: int = 256) -> np.ndarray:
    """Evaluate the oracle on the dense grid of ``box`` (the ground truth).

    Args:
        f: oracle ``f(C (n, d)) -> (n,)``.
        box: the parameter box.
        points_per_dim: grid points per axis (int or one int per axis).
        cache_path: optional ``.npz``; written atomically after every chunk with the values
            computed so far, so an interrupted run resumes where it stopped. A cache made
            for another box or grid is ignored (and overwritten).
        chunk_size: points per oracle call.
    Returns:
        ``(N,)`` values aligned with ``box.grid(points_per_dim)``.
    """
    if not isinstance(box, ParameterBox):
        raise TypeError(f"box: expected a ParameterBox, got {type(box).__name__}")
    check_int(chunk_size, "chunk_size", minimum=1)
    pts = box.grid(points_per_dim)
    shape = np.asarray(box.grid_shape(points_per_dim))
    values = np.full(len(pts), np.nan)
    done = np.zeros(len(pts), dtype=bool)
    key = json.dumps(box.to_dict(), sort_keys=True)
    if cache_path is not None and Path(cache_path).exists():
        with np.load(cache_path) as z:
            if str(z["box"]) == key and np.array_equal(z["shape"], shape):
                values, done = z["values"].copy(), z["done"].copy()
    for start in range(0, len(pts), chunk_size):
        sl = slice(start, start + chunk_size)
        if done[sl].all():
            continue
        values[sl] = _call_oracle(f, pts[sl])
        done[sl] = True
        if cache_path is not None:
            write_npz(cache_path, values=values, done=done, shape=shape, box=np.array(key))
    return values


def reliable_labels(values, h: float) -> np.ndarray:
    """``True`` where the model is reliable, ``values >= h``.

    >>> reliable_labels([0.2, 0.8, 0.9], 0.8).tolist()
    [False, True, True]
    """
    check_range(h, "h")
    return np.asarray(values, dtype=np.float64) >= h


def reliable_is_minority(labels) -> bool:
    """Whether the reliable side is the minority (ties count as minority, the paper's default).

    >>> reliable_is_minority([True, False, False])
    True
    """
    labels = np.asarray(labels, dtype=bool)
    return int(labels.sum()) <= int((~labels).sum())


# ---------------------------------------------------------------------------------------------
# 3. Sampling under a budget
# ---------------------------------------------------------------------------------------------


@dataclass
class SampleSet:
    """Points drawn by a sampler, in order, with their oracle values.

    ``points`` are in box units ``(n, d)``; ``minority_reliable`` is the sampler's own
    view of which side is the minority (from the points it has seen).
    """

    points: np.ndarray
    values: np.ndarray
    h: float
    minority_reliable: bool = True

    @property
    def n_reliable(self) -> int:
        return int((self.values >= self.h).sum())

    def n_positive(self, minority_reliable: bool | None = None) -> int:
        """Number of points in the minority class (the sampler's view unless given)."""
        mr = self.minority_reliable if minority_reliable is None else minority_reliable
        return self.n_reliable if mr else len(self.values) - self.n_reliable

    def head(self, n: int) -> "SampleSet":
        """The first ``n`` points: a sequential sampler's run under the smaller budget ``n``."""
        v = self.values[:n]
        return SampleSet(self.points[:n], v, self.h, reliable_is_minority(v >= self.h))


def _check_budget(box, budget, h):
    if not isinstance(box, ParameterBox):
        raise TypeError(f"box: expected a ParameterBox, got {type(box).__name__}")
    check_int(budget, "budget", minimum=1)
    check_range(h, "h")


def random_sampling(f: Oracle, box: ParameterBox, budget: int, rng=None, h: float = 0.5) -> SampleSet:
    """``budget`` points drawn uniformly from ``box`` and evaluated by ``f``."""
    _check_budget(box, budget, h)
    pts = box.sample(budget, _rng(rng))
    vals = _call_oracle(f, pts)
    return SampleSet(pts, vals, float(h), reliable_is_minority(vals >= h))


def beta_schedule(d: int, t: int, delta: float = 0.1) -> float:
    """The paper's exploration weight ``beta_t = 2 [log(d t pi^2) - log(6 delta)]``.

    >>> round(beta_schedule(2, 10, 0.1), 4)
    11.592
    """
    check_int(d, "d", minimum=1)
    check_int(t, "t", minimum=1)
    check_range(delta, "delta", 1e-12, 1.0)
    return 2.0 * (math.log(d * t * math.pi ** 2) - math.log(6.0 * delta))


def _make_gp(d: int, seed: int, nu: float | None = 2.5, restarts: int = 1):
    _sklearn()
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

    ls = np.full(d, 0.3)
    base = (RBF(ls, (1e-2, 1e1)) if nu is None else Matern(ls, (1e-2, 1e1), nu=nu))
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * base + WhiteKernel(1e-4, (1e-8, 1e-1))
    return GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=restarts,
                                    random_state=seed)


def _fit_quiet(model, X, y):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(X, y)


def gp_sampling(f: Oracle, box: ParameterBox, budget: int, h: float, n_init: int = 5, rng=None,
                beta: float | None = None, delta: float = 0.1, n_candidates: int = 2000,
                kernel: str = "matern", acquisition: str = "paper") -> SampleSet:
    """GP-based sequential sampling that hunts for the minority side of ``f >= h``.

    Start with ``n_init`` uniform points. Then, with ``t`` points seen, fit a GP
    (scikit-learn ``GaussianProcessRegressor``: constant x anisotropic Matern-5/2
    (or RBF) with one length scale per axis on inputs scaled to ``[0, 1]^d``, plus a
    ``WhiteKernel``, ``normalize_y=True``) and take as next point the maximiser of

        ``q(c) = beta_t * sigma(c) + (mu(c) - h)``   (reliable side is the minority)
        ``q(c) = beta_t * sigma(c) + (h - mu(c))``   (failing side is the minority)

    with ``beta_t`` from :func:`beta_schedule` (or the constant ``beta``). The minority
    side is decided from the points seen so far (ties: reliable), so the search
    follows the rarer label even when it is the failing one. A consequence: once the
    search has found more reliable than failing points it turns to the failing side,
    which keeps the sampled labels roughly balanced (what the classifiers need). The paper writes
    ``beta * sigma`` (not GP-UCB's ``sqrt(beta) * sigma``); we follow the paper.

    The paper leaves the optimiser of ``q`` open. We maximise over ``n_candidates``
    uniform points of ``[0, 1]^d`` plus, around each of the 5 best, 40 Gaussian jitters
    (standard deviation 0.05, clipped to the box), and take the best of all.

    ``acquisition="straddle"`` (not in the paper; Bryan et al. 2005) instead maximises
    ``sqrt(beta_t) * sigma(c) - |mu(c) - h|``: it seeks the boundary ``f = h`` itself
    rather than the inside of the minority region, for either side.

    Returns a :class:`SampleSet` in sampling order, so ``.head(b)`` is the run under
    the smaller budget ``b`` (``beta_t`` depends only on ``t``).
    """
    _check_budget(box, budget, h)
    check_int(n_init, "n_init", minimum=1)
    check_int(n_candidates, "n_candidates", minimum=1)
    check_range(delta, "delta", 1e-12, 1.0)
    check_choice(kernel, ("matern", "rbf"), "kernel")
    check_choice(acquisition, ("paper", "straddle"), "acquisition")
    if beta is not None:
        check_range(beta, "beta", 0.0)
    rng = _rng(rng)
    d = box.d
    U = rng.random((min(n_init, budget), d))
    vals = list(_call_oracle(f, box.unscale(U)))
    U = list(U)
    while len(U) < budget:
        t = len(U)
        X, y = np.asarray(U), np.asarray(vals)
        minority_reliable = reliable_is_minority(y >= h)
        b = beta_schedule(d, t, delta) if beta is None else float(beta)
        gp = _make_gp(d, int(rng.integers(2**31)), None if kernel == "rbf" else 2.5)
        _fit_quiet(gp, X, y)

        def q(c):
            mu, sd = gp.predict(c, return_std=True)
            if acquisition == "straddle":
                return math.sqrt(b) * sd - np.abs(mu - h)
            return b * sd + ((mu - h) if minority_reliable else (h - mu))

        cand = rng.random((n_candidates, d))
        qc = q(cand)
        best = cand[np.argsort(-qc)[:5]]
        jit = np.clip(np.repeat(best, 40, axis=0) + 0.05 * rng.standard_normal((len(best) * 40, d)), 0, 1)
        allc, allq = np.concatenate([cand, jit]), np.concatenate([qc, q(jit)])
        nxt = allc[int(np.argmax(allq))]
        U.append(nxt)
        vals.append(float(_call_oracle(f, box.unscale(nxt[None]))[0]))
    v = np.asarray(vals)
    return SampleSet(box.unscale(np.asarray(U)), v, float(h), reliable_is_minority(v >= h))


def sample(sampler: str, f: Oracle, box: ParameterBox, budget: int, h: float, rng=None,
           n_init: int = 5, **gp_kw) -> SampleSet:
    """Dispatch to :func:`random_sampling` or :func:`gp_sampling` (``gp``, ``gp_straddle``) by name."""
    check_choice(sampler, SAMPLERS + EXTRA_SAMPLERS, "sampler")
    if sampler == "random":
        return random_sampling(f, box, budget, rng, h=h)
    if sampler == "gp_straddle":
        gp_kw["acquisition"] = "straddle"
    return gp_sampling(f, box, budget, h, n_init=n_init, rng=rng, **gp_kw)


# ---------------------------------------------------------------------------------------------
# 4. Rebalancing
# ---------------------------------------------------------------------------------------------


@dataclass
class Rebalanced:
    """Training set after rebalancing (inputs scaled to ``[0, 1]^d``, ``y`` = 1 for minority).

    ``X[:n_real]`` are the real samples, ``X[n_real:]`` the synthetic ones;
    ``generated`` counts synthetic points before any filtering (SMOTE-GP keeps a subset);
    ``note`` says when a method could not run and the real samples were used as they are.
    """

    X: np.ndarray
    y: np.ndarray
    n_real: int
    generated: int
    note: str = ""

    @property
    def synthetic(self) -> np.ndarray:
        return self.X[self.n_real:]


def smote_gp_filter(X_min: np.ndarray, values_min: np.ndarray, X_syn: np.ndarray, v: float = 0.005,
                    seed: int = 0, return_variance: bool = False):
    """Keep the synthetic points that a GP on the real minority points is sure about.

    A GP (same kernel family as :func:`gp_sampling`) is fitted to the real minority
    points ``X_min`` (scaled inputs) and their oracle values standardised to zero mean
    and unit variance. A synthetic point is kept iff the GP's posterior variance of the
    latent function there (observation noise excluded) is ``<= v``. The unit of ``v``
    is therefore the variance of the standardised values: ``v = 1`` is roughly "no
    information" (the prior), ``v = 0.005`` means "close to real minority points on the
    scale of the fitted length scales".
    """
    check_range(v, "v", 0.0)
    X_min = np.asarray(X_min, dtype=np.float64)
    X_syn = np.asarray(X_syn, dtype=np.float64)
    if len(X_syn) == 0:
        keep, var = np.zeros(0, dtype=bool), np.zeros(0)
        return (keep, var) if return_variance else keep
    if len(X_min) < 2:
        raise ValueError(f"X_min: SMOTE-GP needs at least 2 real minority points, got {len(X_min)}")
    y = np.asarray(values_min, dtype=np.float64)
    sd = y.std()
    z = (y - y.mean()) / (sd if sd > 0 else 1.0)
    _sklearn()
    from sklearn.gaussian_process import GaussianProcessRegressor

    gp = _make_gp(X_min.shape[1], seed)
    gp = GaussianProcessRegressor(kernel=gp.kernel, normalize_y=False, n_restarts_optimizer=1,
                                  random_state=seed)
    _fit_quiet(gp, X_min, z)
    _, std = gp.predict(X_syn, return_std=True)
    noise = float(gp.kernel_.k2.noise_level)
    var = np.maximum(std ** 2 - noise, 0.0)
    keep = var <= v
    return (keep, var) if return_variance else keep


def rebalance(method: str, X: np.ndarray, y: np.ndarray, values: np.ndarray | None = None,
              seed: int = 0, v: float = 0.005) -> Rebalanced:
    """Rebalance a training set with one of :data:`REBALANCERS`.

    Args:
        method: ``none``, ``random_over`` (random over-sampling), ``smote``,
            ``borderline_smote``, ``adasyn`` (imbalanced-learn), or ``smote_gp``
            (SMOTE points filtered by :func:`smote_gp_filter`; needs ``values``).
        X: ``(n, d)`` inputs scaled to ``[0, 1]^d``.
        y: ``(n,)`` labels, 1 = minority (positive) class, 0 = majority.
        values: ``(n,)`` oracle values (SMOTE-GP's GP regresses them).
        seed: random state of the sampler.
        v: SMOTE-GP variance threshold (standardised units, see :func:`smote_gp_filter`).
    When a method cannot run (fewer than 2 minority points, one class only, or the
    library finds nothing to generate), the real samples are returned unchanged and
    ``note`` says why.
    """
    check_choice(method, REBALANCERS, "method")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int).reshape(-1)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X, y: expected X (n, d) and y (n,), got {X.shape} and {y.shape}")
    if not set(np.unique(y)).issubset({0, 1}):
        raise ValueError("y: expected labels 0 (majority) and 1 (minority)")
    n = len(X)
    same = Rebalanced(X, y, n, 0)
    if method == "none":
        return same
    n_min, n_maj = int(y.sum()), int((1 - y).sum())
    if n_min == 0 or n_maj == 0:
        return replace(same, note="one class only")
    if n_min >= n_maj:
        return replace(same, note="already balanced")
    if method != "random_over" and n_min < 2:
        return replace(same, note="fewer than 2 minority points")
    _sklearn()
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler

    k = min(5, n_min - 1)
    samplers = {
        "random_over": lambda: RandomOverSampler(random_state=seed),
        "smote": lambda: SMOTE(k_neighbors=k, random_state=seed),
        "smote_gp": lambda: SMOTE(k_neighbors=k, random_state=seed),
        "borderline_smote": lambda: BorderlineSMOTE(k_neighbors=k, m_neighbors=min(10, n - 1),
                                                    random_state=seed),
        "adasyn": lambda: ADASYN(n_neighbors=k, random_state=seed),
    }
    try:
        Xr, yr = samplers[method]().fit_resample(X, y)
    except (ValueError, RuntimeError) as err:
        return replace(same, note=f"{method} failed: {err}".splitlines()[0][:120])
    Xr, yr = np.asarray(Xr, dtype=np.float64), np.asarray(yr).astype(int)
    if not np.array_equal(Xr[:n], X):  # imbalanced-learn appends new samples after the real ones
        raise RuntimeError("rebalance: expected the real samples first in the resampled set")
    generated = len(Xr) - n
    if method == "smote_gp":
        if values is None:
            raise ValueError("values: SMOTE-GP needs the oracle values of the samples")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape != (n,):
            raise ValueError(f"values: expected {n} values, got {values.size}")
        keep = smote_gp_filter(X[y == 1], values[y == 1], Xr[n:], v=v, seed=seed)
        Xr = np.concatenate([X, Xr[n:][keep]])
        yr = np.concatenate([y, np.ones(int(keep.sum()), dtype=int)])
    return Rebalanced(Xr, yr, n, generated)


# ---------------------------------------------------------------------------------------------
# 5. Distortion classifiers and metrics
# ---------------------------------------------------------------------------------------------


def make_classifier(name: str, seed: int = 0):
    """A scikit-learn distortion classifier by name (:data:`CLASSIFIERS`), on inputs in ``[0, 1]^d``."""
    check_choice(name, CLASSIFIERS, "classifier")
    _sklearn()
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "decision_tree": lambda: DecisionTreeClassifier(random_state=seed),
        "random_forest": lambda: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "logistic_regression": lambda: LogisticRegression(max_iter=2000),
        "svm": lambda: SVC(kernel="rbf", C=10.0, gamma="scale", random_state=seed),
        "mlp": lambda: MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=2000, random_state=seed),
    }[name]()


def fit_predict(name: str, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, seed: int = 0) -> np.ndarray:
    """Train the named classifier on ``(X, y)`` and predict 0/1 on ``X_test``.

    With one class only in ``y`` the prediction is that class everywhere.
    """
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return np.full(len(X_test), int(y[0]) if len(y) else 0, dtype=np.uint8)
    clf = make_classifier(name, seed)
    _fit_quiet(clf, X, y)
    return np.asarray(clf.predict(X_test)).astype(np.uint8)


def classification_metrics(y_true, y_pred) -> dict[str, float]:
    """F1, precision and recall of the positive (minority) class 1, and balanced accuracy.

    Undefined ratios (no predicted or no true positives) count as 0.

    >>> m = classification_metrics([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    >>> m["precision"], m["recall"], m["f1"], round(m["balanced_accuracy"], 4)
    (0.5, 0.5, 0.5, 0.5833)
    """
    t = np.asarray(y_true).astype(bool).reshape(-1)
    p = np.asarray(y_pred).astype(bool).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_pred: expected {t.size} predictions, got {p.size}")
    tp = int((t & p).sum())
    fp = int((~t & p).sum())
    fn = int((t & ~p).sum())
    tn = int((~t & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    tnr = tn / (tn + fp) if tn + fp else 0.0
    parts = [r for r, n in ((recall, tp + fn), (tnr, tn + fp)) if n]
    bal = float(np.mean(parts)) if parts else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "balanced_accuracy": bal}


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def aggregate(rows: list[dict], by: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Group ``rows`` by the keys ``by`` (first-seen order) and average ``metrics`` (mean and std).

    >>> aggregate([{"a": 1, "x": 1.0}, {"a": 1, "x": 3.0}], ["a"], ["x"])
    [{'a': 1, 'x': 2.0, 'x_std': 1.0, 'n': 2}]
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, rs in groups.items():
        row = dict(zip(by, key))
        for m in metrics:
            vals = np.array([r[m] for r in rs], dtype=np.float64)
            row[m] = float(vals.mean())
            row[f"{m}_std"] = float(vals.std())
        row["n"] = len(rs)
        out.append(row)
    return out


def markdown_table(rows: list[dict], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (floats rounded to ``digits``).

    >>> print(markdown_table([{"a": "x", "b": 0.5}]))
    | a | b |
    |---|---|
    | x | 0.5000 |
    """
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# A toy problem with a known answer
# ---------------------------------------------------------------------------------------------

ANALYTIC_BOX = ParameterBox(("exposure_gain", "gamma", "blur_sigma"), (0.25, 1.4, 0.0), (4.0, 3.4, 2.0))
_ANALYTIC_CENTRE = np.array([0.40, 0.45, 0.25])
_ANALYTIC_WIDTH = np.array([0.26, 0.30, 0.34])


def analytic_oracle(dims: int = 3) -> tuple[Oracle, ParameterBox]:
    """A smooth toy "accuracy" over exposure gain, gamma and blur, for teaching and tests.

    ``f(c) = 0.2 + 0.75 exp(-r^2 / 2) + 0.04 (u_0 - 0.5)``, where ``u`` is ``c`` scaled to
    ``[0, 1]^d`` and ``r`` the distance of ``u`` to the optimum ``(0.40, 0.45, 0.25)`` in
    units of the widths ``(0.26, 0.30, 0.34)``. It imitates a model trained near one
    exposure/gamma/blur setting: accuracy near 0.95 there, falling to chance (0.2) far
    away. With ``h = 0.8`` the reliable set is a small ellipsoidal blob (a few percent of
    the 3-D box, about 10% of the 2-D one), the minority side, as in the paper. ``dims``
    (1-3) keeps the first axes.

    >>> f, box = analytic_oracle(2)
    >>> box.names
    ('exposure_gain', 'gamma')
    >>> bool(f(box.unscale([[0.40, 0.45]]))[0] > 0.9)
    True
    """
    check_int(dims, "dims", minimum=1)
    if dims > 3:
        raise ValueError(f"dims: the analytic oracle has 1 to 3 dimensions, got {dims}")
    box = ParameterBox(ANALYTIC_BOX.names[:dims], ANALYTIC_BOX.low[:dims], ANALYTIC_BOX.high[:dims])
    centre, width = _ANALYTIC_CENTRE[:dims], _ANALYTIC_WIDTH[:dims]

    def f(C):
        u = box.scale(C)
        r2 = (((u - centre) / width) ** 2).sum(axis=1)
        return 0.2 + 0.75 * np.exp(-0.5 * r2) + 0.04 * (u[:, 0] - 0.5)

    return f, box


# ---------------------------------------------------------------------------------------------
# 6. The experiment
# ---------------------------------------------------------------------------------------------

#: Sizes per preset. ``paper`` uses the paper's 4,096-point test grid (16^3) and budget 600.
RELIABILITY_PRESETS = {
    "ci": dict(dims=2, points_per_dim=6, budgets=(12,), seeds=(0,),
               classifiers=("decision_tree", "logistic_regression"), n_init=4, n_candidates=500),
    "lab": dict(dims=3, points_per_dim=8, budgets=(30, 60, 120), seeds=(0, 1, 2),
                classifiers=CLASSIFIERS, n_init=5, n_candidates=2000),
    "paper": dict(dims=3, points_per_dim=16, budgets=(600,), seeds=(0, 1, 2),
                  classifiers=CLASSIFIERS, n_init=10, n_candidates=2000),
}


@dataclass
class ReliabilityConfig:
    """Settings of :func:`run_reliability`; ``None`` fields come from the preset.

    Attributes:
        preset: ``ci``, ``lab`` or ``paper`` (:data:`RELIABILITY_PRESETS`).
        dims: dimensions of the analytic oracle (ignored when ``box`` is given).
        box: the parameter box (a :class:`ParameterBox` or its ``to_dict()``); ``None``: the
            analytic box with ``dims`` axes.
        h: reliability threshold, reliable iff ``f(c) >= h``.
        metric: name of the metric ``f`` computes (a label for tables).
        points_per_dim: dense ground-truth grid per axis.
        budgets: sampling budgets (sequential samplers are run once to the largest
            budget; the smaller budgets are its first points).
        samplers, rebalancers, classifiers: names from :data:`SAMPLERS` (plus
            :data:`EXTRA_SAMPLERS`), :data:`REBALANCERS`,
            :data:`CLASSIFIERS`.
        seeds: one run of everything per seed.
        n_init: random points before GP sampling starts.
        v: SMOTE-GP variance threshold (standardised units, :func:`smote_gp_filter`).
        synthetic_truth: how to check whether synthetic points are truly minority:
            ``exact`` (evaluate ``f``; cheap oracles) or ``grid`` (nearest dense-grid label).
        beta, delta, n_candidates: GP sampling (:func:`gp_sampling`).
        oracle: a label of the oracle (``analytic``, ``isp``).
        out: directory for the cached ground truth and the saved result.
    """

    preset: str = "lab"
    dims: int | None = None
    box: ParameterBox | dict | None = None
    h: float = 0.8
    metric: str = "accuracy"
    points_per_dim: int | None = None
    budgets: tuple[int, ...] | None = None
    samplers: tuple[str, ...] = SAMPLERS
    rebalancers: tuple[str, ...] = REBALANCERS
    classifiers: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    n_init: int | None = None
    v: float = 0.005
    synthetic_truth: str = "exact"
    beta: float | None = None
    delta: float = 0.1
    n_candidates: int | None = None
    oracle: str = "analytic"
    out: Path | str | None = None

    def resolved(self) -> "ReliabilityConfig":
        """A copy with every ``None`` filled from the preset, validated."""
        check_choice(self.preset, tuple(RELIABILITY_PRESETS), "preset")
        p = RELIABILITY_PRESETS[self.preset]
        c = replace(self, **{k: v for k, v in p.items() if getattr(self, k) is None})
        box = c.box
        if isinstance(box, dict):
            box = ParameterBox.from_dict(box)
        if box is None:
            box = analytic_oracle(c.dims)[1]
        elif not isinstance(box, ParameterBox):
            raise TypeError(f"box: expected a ParameterBox or its dict, got {type(box).__name__}")
        c = replace(c, box=box, dims=box.d, budgets=tuple(c.budgets), samplers=tuple(c.samplers),
                    rebalancers=tuple(c.rebalancers), classifiers=tuple(c.classifiers), seeds=tuple(c.seeds))
        check_range(c.h, "h")
        check_range(c.v, "v", 0.0)
        check_choice(c.synthetic_truth, SYNTHETIC_TRUTH, "synthetic_truth")
        check_int(c.n_init, "n_init", minimum=1)
        box.grid_shape(c.points_per_dim)
        for name, values, allowed in (("samplers", c.samplers, SAMPLERS + EXTRA_SAMPLERS), ("rebalancers", c.rebalancers, REBALANCERS),
                                      ("classifiers", c.classifiers, CLASSIFIERS)):
            if not values:
                raise ValueError(f"{name}: expected at least one name")
            for v in values:
                check_choice(v, allowed, name)
        if not c.budgets:
            raise ValueError("budgets: expected at least one budget")
        for b in c.budgets:
            check_int(b, "budgets", minimum=1)
        if not c.seeds:
            raise ValueError("seeds: expected at least one seed")
        for s in c.seeds:
            check_int(s, "seeds", minimum=0)
        return c

    def to_dict(self) -> dict:
        d = asdict(replace(self, box=None))
        d["box"] = self.box.to_dict() if isinstance(self.box, ParameterBox) else self.box
        d["out"] = None if self.out is None else str(self.out)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ReliabilityConfig":
        d = dict(d)
        for k in ("budgets", "samplers", "rebalancers", "classifiers", "seeds"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class ReliabilityResult:
    """Everything :func:`run_reliability` measured; saves to and loads from a directory.

    Attributes:
        config: the resolved :class:`ReliabilityConfig`.
        truth: ``(N,)`` oracle values on the dense grid (``config.box.grid(points_per_dim)``).
        minority_reliable: whether the reliable side is the minority on the grid.
        samples: ``{"sampler/seed": SampleSet}`` at the largest budget.
        rows: one dict per (seed, sampler, budget, rebalancer, classifier) with the grid metrics.
        positives: one dict per (seed, sampler, budget): minority points found.
        synthetic: one dict per (seed, sampler, budget, rebalancer): synthetic points generated,
            kept, and truly in the minority region.
        predictions: ``(len(rows), N)`` 0/1 predictions (1 = minority) on the grid, aligned with ``rows``.
    """

    config: ReliabilityConfig
    truth: np.ndarray
    minority_reliable: bool
    samples: dict[str, SampleSet]
    rows: list[dict]
    positives: list[dict]
    synthetic: list[dict]
    predictions: np.ndarray

    @property
    def box(self) -> ParameterBox:
        return self.config.box

    @property
    def grid_labels(self) -> np.ndarray:
        """``(N,)`` 1 where the grid point is in the minority class."""
        return ((self.truth >= self.config.h) == self.minority_reliable).astype(np.uint8)

    # -- tables -------------------------------------------------------------------------------
    def table(self) -> list[dict]:
        """Table-3 style: metrics averaged over classifiers and seeds per (sampler, budget, rebalancer)."""
        return aggregate(self.rows, ("sampler", "budget", "rebalancer"), METRICS)

    def positives_table(self) -> list[dict]:
        """Minority points found per (sampler, budget), mean and std over seeds."""
        return aggregate(self.positives, ("sampler", "budget"), ("n_positive",))

    def synthetic_table(self) -> list[dict]:
        """Synthetic points per (sampler, budget, rebalancer): generated, kept, truly minority (means)."""
        rows = aggregate(self.synthetic, ("sampler", "budget", "rebalancer"),
                         ("generated", "kept", "kept_minority"))
        for r in rows:
            r["precision"] = r["kept_minority"] / r["kept"] if r["kept"] else float("nan")
        return rows

    def classifier_table(self, budget: int | None = None) -> list[dict]:
        """Minority F1 per classifier (columns) for each (sampler, rebalancer), mean over seeds, at ``budget``.

        Default budget: the largest. The column ``mean`` averages over the classifiers (Table 3 of the paper).
        """
        budget = max(self.config.budgets) if budget is None else budget
        check_choice(budget, self.config.budgets, "budget")
        rows = aggregate([r for r in self.rows if r["budget"] == budget], ("sampler", "rebalancer", "classifier"),
                         ("f1",))
        out: dict[tuple, dict] = {}
        for r in rows:
            row = out.setdefault((r["sampler"], r["rebalancer"]),
                                 {"sampler": r["sampler"], "rebalancer": r["rebalancer"]})
            row[r["classifier"]] = r["f1"]
        for row in out.values():
            row["mean"] = float(np.mean([row[k] for k in self.config.classifiers]))
        return list(out.values())

    def to_markdown(self) -> str:
        c = self.config
        side = "reliable" if self.minority_reliable else "failing"
        n_min = int(self.grid_labels.sum())
        head = (f"Reliability map: oracle `{c.oracle}`, metric `{c.metric}`, h = {c.h}, box "
                f"{', '.join(f'{n} in [{lo:g}, {hi:g}]' for n, lo, hi in zip(c.box.names, c.box.low, c.box.high))}; "
                f"dense grid {'x'.join(map(str, c.box.grid_shape(c.points_per_dim)))} = {len(self.truth)} points, "
                f"minority = {side} side ({n_min} points, {n_min / len(self.truth):.1%}); seeds {list(c.seeds)}; "
                f"classifiers {', '.join(c.classifiers)}.")
        t = [{k: r[k] for k in ("sampler", "budget", "rebalancer", "f1", "f1_std", "precision", "recall",
                                 "balanced_accuracy")} for r in self.table()]
        p = [{"sampler": r["sampler"], "budget": r["budget"], "positives found": r["n_positive"],
              "std": r["n_positive_std"]} for r in self.positives_table()]
        s = [{"sampler": r["sampler"], "budget": r["budget"], "rebalancer": r["rebalancer"],
              "generated": r["generated"], "kept": r["kept"], "truly minority": r["kept_minority"],
              "precision": r["precision"]}
             for r in self.synthetic_table() if r["rebalancer"] != "none"]
        parts = [head, "", "## Minority-class metrics on the dense grid (mean over classifiers and seeds)", "",
                 markdown_table(t), "", "## Minority points found by the samplers (mean over seeds)", "",
                 markdown_table(p, digits=2)]
        if s:
            parts += ["", "## Synthetic points and how many are truly in the minority region (means)", "",
                      markdown_table(s, digits=2)]
        return "\n".join(parts) + "\n"

    # -- persistence --------------------------------------------------------------------------
    def save(self, out=None) -> Path:
        """Write ``result.json``, ``arrays.npz`` and ``table.md`` under ``out`` (default ``config.out``), atomically."""
        out = out if out is not None else self.config.out
        if out is None or not str(out):
            raise ValueError("out: no output directory given (config.out is None)")
        arrays = {"truth": self.truth, "predictions": self.predictions}
        keys = []
        for i, (k, s) in enumerate(self.samples.items()):
            arrays[f"sample{i}_points"], arrays[f"sample{i}_values"] = s.points, s.values
            keys.append(k)
        write_result(out, {
            "config": self.config.to_dict(), "minority_reliable": self.minority_reliable, "sample_keys": keys,
            "rows": self.rows, "positives": self.positives, "synthetic": self.synthetic}, arrays)
        write_text(out / "table.md", self.to_markdown())
        return out

    @classmethod
    def load(cls, out) -> "ReliabilityResult":
        meta, z = read_result(out, "run_reliability")
        config = ReliabilityConfig.from_dict(meta["config"]).resolved()
        truth, preds = z["truth"], z["predictions"]
        samples = {k: SampleSet(z[f"sample{i}_points"], z[f"sample{i}_values"], config.h,
                                reliable_is_minority(z[f"sample{i}_values"] >= config.h))
                   for i, k in enumerate(meta["sample_keys"])}
        return cls(config, truth, bool(meta["minority_reliable"]), samples, meta["rows"], meta["positives"],
                   meta["synthetic"], preds)


def _nearest_grid_index(box: ParameterBox, points_per_dim, C: np.ndarray) -> np.ndarray:
    shape = box.grid_shape(points_per_dim)
    u = np.clip(box.scale(C), 0, 1)
    idx = [np.rint(u[:, i] * (n - 1)).astype(int) for i, n in enumerate(shape)]
    return np.ravel_multi_index(idx, shape)


def run_reliability(config: ReliabilityConfig | None = None, f: Oracle | None = None,
                    progress: bool = False) -> ReliabilityResult:
    """Ground truth, sampling, rebalancing, distortion classifiers and their scores.

    Args:
        config: the settings (default: ``ReliabilityConfig()``, the ``lab`` preset).
        f: the oracle; ``None`` uses :func:`analytic_oracle` (then ``config.box`` must be
            ``None`` or the analytic box). With an oracle of your own, give ``config.box``.
        progress: print one line per (seed, sampler).
    Returns:
        a :class:`ReliabilityResult`, saved under ``config.out`` when it is set (the dense-grid
        values are cached there as ``ground_truth.npz`` and reused by a rerun).
    """
    config = (config or ReliabilityConfig())
    if not isinstance(config, ReliabilityConfig):
        raise TypeError(f"config: expected a ReliabilityConfig, got {type(config).__name__}")
    if f is None:
        if config.box is not None:
            cbox = config.box if isinstance(config.box, ParameterBox) else ParameterBox.from_dict(config.box)
            dims = cbox.d
            f, abox = analytic_oracle(dims)
            if cbox != abox:
                raise ValueError("box: a custom box needs its own oracle f; leave box=None for the analytic oracle")
        else:
            f, _ = analytic_oracle(config.resolved().dims)
    elif config.box is None:
        raise ValueError("box: give config.box, the parameter box your oracle f is defined on")
    config = config.resolved()
    box, h, ppd = config.box, config.h, config.points_per_dim
    out = Path(config.out) if config.out is not None else None
    truth = evaluate_grid(f, box, ppd, cache_path=None if out is None else out / "ground_truth.npz")
    grid_u = box.scale(box.grid(ppd))
    minority_reliable = reliable_is_minority(truth >= h)
    y_grid = ((truth >= h) == minority_reliable).astype(np.uint8)
    top = max(config.budgets)
    samples, rows, positives, synthetic, preds = {}, [], [], [], []
    for seed in config.seeds:
        for si, sampler in enumerate(config.samplers):
            rng = np.random.default_rng([seed, si])
            s = sample(sampler, f, box, top, h, rng=rng, n_init=config.n_init, beta=config.beta,
                       delta=config.delta, n_candidates=config.n_candidates) if sampler != "random" else \
                sample(sampler, f, box, top, h, rng=rng)
            samples[f"{sampler}/{seed}"] = s
            for budget in sorted(config.budgets):
                sb = s.head(budget)
                X = box.scale(sb.points)
                y = ((sb.values >= h) == minority_reliable).astype(int)
                key = {"seed": seed, "sampler": sampler, "budget": budget}
                positives.append({**key, "n_positive": int(y.sum())})
                for reb in config.rebalancers:
                    rb = rebalance(reb, X, y, sb.values, seed=seed, v=config.v)
                    syn = rb.synthetic
                    if len(syn) == 0:
                        correct = 0
                    elif config.synthetic_truth == "exact":
                        sv = _call_oracle(f, box.unscale(syn))
                        correct = int(((sv >= h) == minority_reliable).sum())
                    else:
                        correct = int(y_grid[_nearest_grid_index(box, ppd, box.unscale(syn))].sum())
                    synthetic.append({**key, "rebalancer": reb, "generated": rb.generated, "kept": len(syn),
                                      "kept_minority": correct, "note": rb.note})
                    for clf in config.classifiers:
                        p = fit_predict(clf, rb.X, rb.y, grid_u, seed=seed)
                        preds.append(p)
                        rows.append({**key, "rebalancer": reb, "classifier": clf,
                                     **classification_metrics(y_grid, p), "n_train": len(rb.X)})
            if progress:
                print(f"seed {seed} {sampler}: positives "
                      + ", ".join(f"{r['budget']}: {r['n_positive']}" for r in positives[-len(config.budgets):]),
                      flush=True)
    result = ReliabilityResult(config, truth, minority_reliable, samples, rows, positives, synthetic,
                               np.asarray(preds, dtype=np.uint8).reshape(len(rows), len(truth)))
    if out is not None:
        result.save(out)
    return result


# ---------------------------------------------------------------------------------------------
# Figures (matplotlib imported lazily)
# ---------------------------------------------------------------------------------------------


def _pick(values, preferred, name):
    if preferred is not None:
        check_choice(preferred, values, name)
        return preferred
    if name == "rebalancer":
        return values[-1]
    return "random_forest" if "random_forest" in values else values[0]


def _row_index(result, seed, sampler, budget, rebalancer, classifier) -> int:
    return next(k for k, r in enumerate(result.rows) if r["seed"] == seed and r["sampler"] == sampler
                and r["budget"] == budget and r["rebalancer"] == rebalancer and r["classifier"] == classifier)


def _map_slice(result: ReliabilityResult, dims=(0, 1), slice_at=None) -> dict:
    """A 2-D slice of the dense grid: the truth on it, a function slicing grid arrays, axes and extent.

    Rows of the 2-D arrays follow ``dims[0]`` (x), columns ``dims[1]`` (y); images are drawn transposed.
    """
    c = result.config
    box = c.box
    if box.d < 2:
        raise ValueError("result: a map needs a box with at least 2 dimensions")
    if (len(dims) != 2 or dims[0] == dims[1]
            or not all(isinstance(i, (int, np.integer)) and 0 <= i < box.d for i in dims)):
        raise ValueError(f"dims: expected two different axis indices in [0, {box.d}), got {dims!r}")
    shape = box.grid_shape(c.points_per_dim)
    axes = box.axes(c.points_per_dim)
    if slice_at is None:
        at = np.unravel_index(int(np.argmax(result.truth)), shape)
    else:
        sa = np.asarray(slice_at, dtype=np.float64).reshape(-1)
        if sa.shape != (box.d,):
            raise ValueError(f"slice_at: expected {box.d} values (one per axis), got {sa.size}")
        at = tuple(int(np.argmin(np.abs(axes[i] - sa[i]))) for i in range(box.d))
    index = tuple(slice(None) if i in dims else at[i] for i in range(box.d))

    def take(flat):
        a = np.asarray(flat).reshape(shape)[index]
        return a.T if dims[0] > dims[1] else a

    def edges(a):
        step = (a[-1] - a[0]) / (len(a) - 1)
        return a[0] - step / 2, a[-1] + step / 2

    a0, a1 = axes[dims[0]], axes[dims[1]]
    return {"truth": take(result.truth), "take": take, "a0": a0, "a1": a1, "at": at, "axes": axes,
            "extent": (*edges(a0), *edges(a1))}


def plot_map(result: ReliabilityResult, dims: tuple[int, int] = (0, 1), slice_at=None, *, sampler: str | None = None,
             rebalancer: str | None = None, classifier: str | None = None, budget: int | None = None,
             seed: int | None = None):
    """True reliability map next to a distortion classifier's map on a 2-D slice of the grid.

    Args:
        result: a :class:`ReliabilityResult`.
        dims: the two axes shown (indices into the box).
        slice_at: values of the other axes (one per box axis, in box units; the entries of
            ``dims`` are ignored), snapped to the nearest grid values. Default: the grid
            point with the highest oracle value.
        sampler, rebalancer, classifier, budget, seed: which run to show (defaults: the
            last sampler and rebalancer of the config, the random forest (else the first
            classifier), the first seed, the
            largest budget).
    The boundary ``f = h`` of the truth is drawn on both panels; the run's sampled points
    are projected onto the slice (filled: minority).
    """
    import matplotlib.pyplot as plt

    c = result.config
    box = c.box
    sl = _map_slice(result, dims, slice_at)
    sampler = sampler or c.samplers[-1]
    check_choice(sampler, c.samplers, "sampler")
    rebalancer = _pick(c.rebalancers, rebalancer, "rebalancer")
    classifier = _pick(c.classifiers, classifier, "classifier")
    budget = budget if budget is not None else max(c.budgets)
    check_choice(budget, c.budgets, "budget")
    seed = seed if seed is not None else c.seeds[0]
    check_choice(seed, c.seeds, "seed")
    i = _row_index(result, seed, sampler, budget, rebalancer, classifier)
    t2, p2 = sl["truth"], sl["take"](result.predictions[i])
    a0, a1, ext, at, axes = sl["a0"], sl["a1"], sl["extent"], sl["at"], sl["axes"]
    s = result.samples[f"{sampler}/{seed}"].head(budget)
    pos = (s.values >= c.h) == result.minority_reliable
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
    im = ax1.imshow(t2.T, origin="lower", extent=ext, aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=ax1, label=c.metric)
    ax1.set_title(f"true {c.metric}; reliable iff >= {c.h:g}")
    ax2.imshow(p2.T, origin="lower", extent=ext, aspect="auto", cmap="Greys", vmin=0, vmax=1.6)
    ax2.set_title(f"predicted minority (grey): {classifier}\n{sampler} sampling, {budget} points, {rebalancer}",
                  fontsize=9)
    for ax in (ax1, ax2):
        if t2.min() < c.h <= t2.max():
            ax.contour(a0, a1, t2.T, levels=[c.h], colors="tab:red", linewidths=1.5)
        ax.scatter(s.points[~pos, dims[0]], s.points[~pos, dims[1]], s=14, facecolors="none",
                   edgecolors="tab:orange", label="sampled (majority)")
        ax.scatter(s.points[pos, dims[0]], s.points[pos, dims[1]], s=18, c="tab:red", label="sampled (minority)")
        ax.set_xlabel(box.names[dims[0]])
        ax.set_ylabel(box.names[dims[1]])
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
    others = ", ".join(f"{box.names[k]} = {axes[k][at[k]]:.3g}" for k in range(box.d) if k not in dims)
    fig.suptitle(f"slice at {others} (points projected)" if others else "reliability map")
    ax2.legend(loc="upper right", fontsize=7)
    return fig


def plot_positives(result: ReliabilityResult):
    """Minority points found per budget, one line per sampler (mean and std over seeds)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2), constrained_layout=True)
    table = result.positives_table()
    for sampler in result.config.samplers:
        rs = [r for r in table if r["sampler"] == sampler]
        ax.errorbar([r["budget"] for r in rs], [r["n_positive"] for r in rs],
                    yerr=[r["n_positive_std"] for r in rs], marker="o", capsize=3, label=sampler)
    ax.set_xlabel("budget (oracle evaluations)")
    ax.set_ylabel("minority points found")
    ax.legend()
    return fig


# ---------------------------------------------------------------------------------------------
# 7. The ISP oracle: a task model's metric on a verification set rendered with parameters c
# ---------------------------------------------------------------------------------------------

#: Named drift parameters understood by :func:`isp_oracle` besides raw ``Pipeline`` parameter names.
ISP_PARAMETERS = {
    "exposure": "digital gain on the raw signal above the black level: "
                "raw' = clip(bl + g (raw - bl), 0, 1); 1 = as captured (noise is not re-simulated)",
    "black_level_offset": "added to the pipeline's black level at all four CFA sites",
    "wb_r": "factor on the red white-balance gain (1 = the camera's gain)",
    "wb_g": "factor on the green white-balance gain",
    "wb_b": "factor on the blue white-balance gain",
    "wb_scale": "factor on all three white-balance gains",
    "gamma": "the gamma of the GC stage (absolute)",
    "sharpen": "sharpening strength s: kernel = identity + s (K_SHARPEN - identity); 1 = the default, 0 = none",
    "blur_sigma": "standard deviation (pixels) of the 5x5 Gaussian blur kernel of the DN stage, "
                  "truncated to 5x5 and normalised; 0 = no blur (the default kernel has 0.5)",
}
_PARAM_ALIASES = {
    "black_level_offset": "black_level.bl",
    "wb_r": "white_balance.wb", "wb_g": "white_balance.wb", "wb_b": "white_balance.wb",
    "wb_scale": "white_balance.wb",
    "gamma": "gamma_correction.gamma",
    "sharpen": "sharpen.kernel",
    "blur_sigma": "denoise.kernel",
}
ISP_METRICS = ("accuracy", "balanced_accuracy", "worst_class_accuracy", "macro_f1")


def _parse_param_name(name: str):
    """``"white_balance.wb[0]"`` -> (``"white_balance.wb"``, ``(0,)``); no brackets: index ``None``."""
    if name.endswith("]") and "[" in name:
        base, idx = name[:-1].split("[", 1)
        try:
            return base, tuple(int(i) for i in idx.split(","))
        except ValueError:
            raise ValueError(f"box: cannot parse the index in parameter name {name!r}") from None
    return name, None


def _blur_kernel(sigma: float, like):
    import torch

    if sigma <= 1e-3:
        k = torch.zeros(5, 5, dtype=torch.float64)
        k[2, 2] = 1.0
    else:
        x = torch.arange(-2, 3, dtype=torch.float64)
        g = torch.exp(-0.5 * (x / sigma) ** 2)
        k = torch.outer(g, g)
        k = k / k.sum()
    return k.to(dtype=like.dtype, device=like.device)


def isp_metric(pred, targets, metric: str = "accuracy", n_classes: int | None = None) -> float:
    """Accuracy, balanced accuracy (mean per-class recall), worst-class accuracy or macro-F1 of
    predicted labels, as computed by :func:`rawdrift.metrics.classification_metrics`.

    Computed by :func:`rawdrift.metrics.classification_metrics`; per-class figures use the
    classes present in ``targets`` (``n_classes`` only fixes the size of the confusion matrix).

    >>> isp_metric([0, 1, 1, 1], [0, 0, 1, 1], "worst_class_accuracy")
    0.5
    """
    from ..metrics import classification_metrics as task_metrics

    check_choice(metric, ISP_METRICS, "metric")
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    t = np.asarray(targets).reshape(-1).astype(np.int64)
    if p.shape != t.shape:
        raise ValueError(f"pred: expected {t.size} predictions, got {p.size}")
    if n_classes is not None:
        check_int(n_classes, "n_classes", minimum=1)
    return float(task_metrics(t, p, n_classes)[metric])


def isp_oracle(model, pipeline, raw, targets, box: ParameterBox, metric: str = "accuracy",
               batch_size: int = 64, device="cpu", crop: int | None = None) -> Oracle:
    """The oracle ``f(C)``: the task model's metric on ``raw`` rendered with each parameter point.

    Args:
        model: a torch classifier taking ``(B, 3, H, W)`` views in [0, 1] and returning logits
            ``(B, K)`` (normalisation belongs to the model's input side); put in eval mode.
        pipeline: a ``Pipeline`` (e.g. ``Pipeline.parametrized(camera)``), a ``Camera`` (then
            ``Pipeline.parametrized(camera)`` is built), or a callable returning a pipeline. Any
            ``nn.Module`` mapping ``(B, 1, H, W)`` raw to ``(B, 3, H, W)`` views works for the
            parameter names it has.
        raw: ``(N, 1, H, W)`` verification raw mosaics in [0, 1] (tensor or array).
        targets: ``(N,)`` class labels.
        box: the axes to vary. Names are those of :data:`ISP_PARAMETERS` (``exposure``,
            ``black_level_offset``, ``wb_r``/``wb_g``/``wb_b``/``wb_scale``, ``gamma``,
            ``sharpen``, ``blur_sigma``) or any parameter (or buffer) of the pipeline by its
            ``named_parameters()`` name, optionally indexed: ``"white_balance.wb[0]"``,
            ``"color_correction.M[1,2]"`` (set to the value; unindexed: every element).
        metric: one of :data:`ISP_METRICS` (``accuracy``, ``balanced_accuracy``,
            ``worst_class_accuracy``, ``macro_f1``).
        batch_size: views rendered and classified at once.
        device: torch device for rendering and the model.
        crop: if given, the model sees the centre ``crop`` x ``crop`` of each rendered view (at an
            even offset, as the training engine crops), e.g. the size it was trained on.
    Returns:
        ``f(C (n, d)) -> (n,)``; each point restores the pipeline's original values first.
    """
    import torch
    from torch import nn

    from ..device import pick_device

    check_choice(metric, ISP_METRICS, "metric")
    check_int(batch_size, "batch_size", minimum=1)
    if not isinstance(box, ParameterBox):
        raise TypeError(f"box: expected a ParameterBox, got {type(box).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch nn.Module, got {type(model).__name__}")
    dev = pick_device(device) if isinstance(device, str) else torch.device(device)
    try:
        from ..isp.camera import Camera
        from ..isp.pipeline import Pipeline
    except ImportError:  # pragma: no cover - the ISP package is part of rawdrift
        Camera = Pipeline = None
    if Camera is not None and isinstance(pipeline, Camera):
        pipeline = Pipeline.parametrized(pipeline)
    elif not isinstance(pipeline, nn.Module) and callable(pipeline):
        pipeline = pipeline()
    if not isinstance(pipeline, nn.Module):
        raise TypeError(f"pipeline: expected an nn.Module, a Camera or a factory, got {type(pipeline).__name__}")
    raw = torch.as_tensor(raw, dtype=torch.float32)
    if raw.ndim != 4 or raw.shape[1] != 1 or len(raw) == 0:
        raise ValueError(f"raw: expected (N, 1, H, W) raw mosaics, got shape {tuple(raw.shape)}")
    t = np.asarray(targets.cpu() if hasattr(targets, "cpu") else targets).reshape(-1)
    if len(t) != len(raw):
        raise ValueError(f"targets: expected {len(raw)} labels (one per raw image), got {len(t)}")
    if crop is not None:
        check_int(crop, "crop", minimum=1)
        if crop > min(raw.shape[-2:]):
            raise ValueError(f"crop: expected at most {min(raw.shape[-2:])} (the raw size), got {crop}")
    oy, ox = (2 * (((n - crop) // 2) // 2) for n in raw.shape[-2:]) if crop is not None else (0, 0)
    pipeline = pipeline.to(dev).eval()
    model = model.to(dev).eval()
    tensors = dict(pipeline.named_parameters())
    tensors.update(dict(pipeline.named_buffers()))
    resolved = []
    for name in box.names:
        if name == "exposure":
            resolved.append((name, None, None))
            continue
        base, idx = _parse_param_name(_PARAM_ALIASES.get(name, name))
        if base not in tensors:
            known = ", ".join(sorted(ISP_PARAMETERS) + sorted(tensors))
            raise ValueError(f"box: unknown parameter name {name!r}; known: {known}")
        if idx is not None:
            try:
                tensors[base].detach()[idx]
            except IndexError:
                raise ValueError(f"box: index out of range in {name!r} (shape {tuple(tensors[base].shape)})") from None
        resolved.append((name, base, idx))
    original = {k: v.detach().clone() for k, v in tensors.items()}
    bl_name = "black_level.bl" if "black_level.bl" in tensors else None
    wb_index = {"wb_r": 0, "wb_g": 1, "wb_b": 2}

    def set_point(c):
        gain = 1.0
        for (name, base, idx), value in zip(resolved, c):
            value = float(value)
            if name == "exposure":
                gain = value
                continue
            target = tensors[base].data
            if name == "black_level_offset":
                target.add_(value)
            elif name in wb_index:
                target[wb_index[name]] *= value
            elif name == "wb_scale":
                target.mul_(value)
            elif name == "sharpen":
                eye = torch.zeros_like(target)
                eye[1, 1] = 1.0
                from ..isp.sharpen import SHARPEN_KERNEL

                k = SHARPEN_KERNEL.to(dtype=target.dtype, device=target.device)
                target.copy_(eye + value * (k - eye))
            elif name == "blur_sigma":
                target.copy_(_blur_kernel(value, target))
            elif idx is None:
                target.fill_(value)
            else:
                target[idx] = value
        return gain

    def f(C):
        C = box._points(C, "C")
        out = np.empty(len(C))
        with torch.no_grad():
            for j, c in enumerate(C):
                for k, v in tensors.items():
                    v.data.copy_(original[k])
                gain = set_point(c)
                preds = []
                for start in range(0, len(raw), batch_size):
                    x = raw[start:start + batch_size].to(dev)
                    if gain != 1.0:
                        if bl_name is not None:
                            from ..raw.cfa import site_map

                            bl = site_map(original[bl_name].to(x.dtype), x.shape[-2], x.shape[-1])
                        else:
                            bl = torch.zeros((), dtype=x.dtype, device=dev)
                        x = (bl + gain * (x - bl)).clamp(0, 1)
                    view = pipeline(x)
                    if crop is not None:
                        view = view[..., oy:oy + crop, ox:ox + crop]
                    preds.append(model(view).argmax(dim=1).cpu())
                out[j] = isp_metric(torch.cat(preds).numpy(), t, metric)
            for k, v in tensors.items():
                v.data.copy_(original[k])
        return out

    return f



# ---------------------------------------------------------------------------------------------
# 8. A trained model's reliability map (the book chapter): oracle, cached runs, explorer
# ---------------------------------------------------------------------------------------------

#: The chapter's box: a digital exposure gain on the raw signal and the gamma of the GC stage.
CHAPTER_BOX = ParameterBox(("exposure", "gamma"), (0.1, 1.0), (2.0, 4.0))

#: Values of the :data:`ISP_PARAMETERS` axes that leave the pipeline as it is (``gamma``: the camera's).
_NEUTRAL = {"exposure": 1.0, "black_level_offset": 0.0, "wb_r": 1.0, "wb_g": 1.0, "wb_b": 1.0, "wb_scale": 1.0,
            "sharpen": 1.0, "blur_sigma": 0.5}


#: Sizes of the book chapter per preset: ``oracle`` goes to :func:`trained_isp_oracle`, ``run`` to
#: :class:`ReliabilityConfig`, ``sweep`` overrides ``run`` for the explorer's threshold sweep.
CHAPTER_SETTINGS = {
    "ci": dict(oracle=dict(epochs=4, n_verify=None),
               run=dict(points_per_dim=8, budgets=(10, 20), seeds=(0,), n_init=4, n_candidates=500,
                        rebalancers=("none", "smote", "smote_gp"),
                        classifiers=("decision_tree", "random_forest", "logistic_regression")),
               sweep=dict(rebalancers=("smote_gp",), classifiers=("random_forest",))),
    "lab": dict(oracle=dict(epochs=None, n_verify=128),
                run=dict(points_per_dim=16, budgets=(15, 30, 60), seeds=(0, 1, 2), n_init=5, n_candidates=2000,
                         rebalancers=("none", "random_over", "smote", "smote_gp"), classifiers=CLASSIFIERS),
                sweep=dict(seeds=(0,), rebalancers=("smote_gp",), classifiers=("random_forest",))),
    "paper": dict(oracle=dict(epochs=None, n_verify=None),
                  run=dict(points_per_dim=32, budgets=(100, 300, 600), seeds=(0, 1, 2), n_init=10,
                           n_candidates=2000, rebalancers=REBALANCERS, classifiers=CLASSIFIERS),
                  sweep=dict(seeds=(0,), rebalancers=("smote_gp",), classifiers=("random_forest",))),
}


def with_normalization(model, mean, std):
    """``model`` preceded by per-channel normalisation ``(v - mean) / std`` (an ``nn.Module``).

    Task models are trained on normalised views (:func:`rawdrift.train.normalization_for`);
    the oracle renders views in [0, 1], so it scores the model through this wrapper.
    """
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch nn.Module, got {type(model).__name__}")
    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    if mean_t.shape != (3,) or std_t.shape != (3,):
        raise ValueError(f"mean, std: expected 3 values each, got {mean_t.numel()} and {std_t.numel()}")
    if not bool((std_t > 0).all()):
        raise ValueError(f"std: expected positive values, got {std_t.tolist()}")

    class Normalized(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("mean", mean_t.reshape(1, 3, 1, 1))
            self.register_buffer("std", std_t.reshape(1, 3, 1, 1))

        def forward(self, v):
            return self.model((v - self.mean) / self.std)

    return Normalized()


class MemoOracle:
    """An oracle that remembers every point it has evaluated (exact match of the coordinates).

    A sweep over ``h`` evaluates the same dense grid and, for random sampling, the same
    points (they do not depend on ``h``) again; through this wrapper only new points cost
    model evaluations. ``calls`` counts the points actually passed to ``f``.

    >>> m = MemoOracle(lambda C: C.sum(axis=1))
    >>> m([[1.0, 2.0], [1.0, 2.0]]).tolist(), m([[1.0, 2.0]]).tolist(), m.calls
    ([3.0, 3.0], [3.0], 1)
    """

    def __init__(self, f: Oracle):
        if not callable(f):
            raise TypeError(f"f: expected a callable oracle f(C) -> values, got {type(f).__name__}")
        self.f = f
        self.memo: dict[bytes, float] = {}
        self.calls = 0

    def __call__(self, C) -> np.ndarray:
        C = np.ascontiguousarray(C, dtype=np.float64)
        if C.ndim != 2:
            raise ValueError(f"C: expected an array (n, d), got shape {C.shape}")
        keys = [row.tobytes() for row in C]
        todo = {k: i for i, k in enumerate(keys) if k not in self.memo}
        if todo:
            idx = list(todo.values())
            vals = _call_oracle(self.f, C[idx])
            self.memo.update(zip(todo, vals.tolist()))
            self.calls += len(idx)
        return np.array([self.memo[k] for k in keys], dtype=np.float64)


class ModelOracle(MemoOracle):
    """The oracle of :func:`trained_isp_oracle`: a memoising ``f(C)`` plus what it measures.

    Attributes:
        box: the parameter box.
        metric: ``accuracy``, ``balanced_accuracy`` or ``worst_class_accuracy``.
        default_point: ``(d,)`` the box coordinates of the training pipeline (``None`` where unknown).
        clean: the metric on the training pipeline's own views (``f`` at ``default_point``).
        info: dataset, preset, sizes and the model's training summary.
        label: a string naming the oracle (stored in :class:`ReliabilityConfig.oracle` for caching).
    """

    def __init__(self, f, box, metric, default_point, info):
        super().__init__(f)
        self.box, self.metric, self.info = box, metric, info
        self.default_point = default_point
        self.clean = float(self(default_point[None])[0]) if default_point is not None else float("nan")
        self.label = ("isp:{dataset}:{preset}:seed{seed}:epochs{epochs}:verify{n_verify}:{metric}"
                      .format(metric=metric, **info))


def default_point(box: ParameterBox, pipeline) -> np.ndarray | None:
    """Box coordinates at which :func:`isp_oracle` leaves ``pipeline`` unchanged, or ``None``.

    Named axes take their neutral values (``exposure`` 1, ``gamma`` the pipeline's own,
    ``blur_sigma`` 0.5, ...); raw parameter names their current (scalar) value.
    """
    tensors = dict(pipeline.named_parameters())
    tensors.update(dict(pipeline.named_buffers()))
    out = []
    for name in box.names:
        if name in _NEUTRAL:
            out.append(_NEUTRAL[name])
            continue
        base, idx = _parse_param_name(_PARAM_ALIASES.get(name, name))
        t = tensors.get(base)
        if t is None:
            return None
        t = t.detach()
        t = t[idx] if idx is not None else t
        if t.numel() != 1:
            return None
        out.append(float(t.reshape(())))
    return np.asarray(out, dtype=np.float64)


def trained_isp_oracle(dataset: str = "synthetic-microscopy", box: ParameterBox | None = None, *,
                       preset: str | None = None, out=None, metric: str = "accuracy", n_verify: int | None = None,
                       epochs: int | None = None, seed: int = 0, device="cpu", batch_size: int = 64,
                       progress: bool = False) -> ModelOracle:
    """Train (or load) a classifier on the default ISP's views; return the oracle of its reliability map.

    The first fold of a stratified split (the preset's ``folds``) trains a ResNet-18 with
    :func:`rawdrift.train.fit` on views of the frozen default ``Pipeline.parametrized``
    (``epochs``: default the preset's). The model is cached as ``out/model.pt`` (atomic;
    the resume checkpoint is deleted afterwards) and reused. The verification set is
    ``n_verify`` images of the held-out fold (default: all, in a seeded random order), and
    ``f(c)`` is the metric of the model on them rendered through configuration ``c`` by the
    torch ISP (:func:`isp_oracle`, centre crop of the training size).

    Args:
        dataset: a classification dataset of :func:`rawdrift.data.get_dataset`.
        box: the axes (default :data:`CHAPTER_BOX`: exposure and gamma).
        preset: sizes (default ``$RAWDRIFT_PRESET``, else ``lab``).
        out: cache directory (default ``rawdrift.io.cache_dir("reliability-model", dataset-preset-...)``).
        metric: ``accuracy``, ``balanced_accuracy`` or ``worst_class_accuracy`` (:data:`ISP_METRICS`).
        n_verify, epochs, seed, device, batch_size, progress: as named.
    """
    import torch
    from torch import nn

    from .. import train as T
    from ..data import get_dataset
    from ..data.base import stratified_kfold
    from ..device import pick_device
    from ..io import atomic_path, cache_dir
    from ..isp.pipeline import Pipeline
    from ..presets import default_preset_name, get_preset
    from .views import ViewSet, render_views

    box = CHAPTER_BOX if box is None else box
    if not isinstance(box, ParameterBox):
        raise TypeError(f"box: expected a ParameterBox, got {type(box).__name__}")
    check_choice(metric, ISP_METRICS, "metric")
    if n_verify is not None:
        check_int(n_verify, "n_verify", minimum=1)
    preset = preset or default_preset_name()
    dev = pick_device(device) if isinstance(device, str) else torch.device(device)
    ds = get_dataset(dataset, preset=preset, seed=seed)
    if ds.task != "classification":
        raise ValueError(f"dataset: the oracle scores classifiers; {dataset} is a {ds.task} dataset")
    tcfg = T.TrainConfig(task="classification", preset=preset, epochs=epochs, seed=seed, device=str(dev),
                         progress=progress).resolved("classification")
    tr_idx, te_idx = stratified_kfold(ds.targets, get_preset(preset).folds, seed)[0]
    out = Path(out) if out is not None else cache_dir("reliability-model", f"{dataset}-{preset}-seed{seed}-"
                                                                            f"epochs{tcfg.epochs}")
    default = Pipeline.parametrized(ds.camera, device=dev).freeze()
    model = T.build_task_model(tcfg, num_classes=len(ds.classes)).to(dev)
    path = out / "model.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, map_location=dev, weights_only=True))
    else:
        views = ViewSet(render_views(ds.raw_tensor().to(dev), default), ds)
        ckpt = out / "checkpoint"
        res = T.fit(model, nn.Identity(), (views, tr_idx), (views, te_idx), replace(tcfg, checkpoint_dir=str(ckpt)))
        model.load_state_dict(res.model_state)
        with atomic_path(path) as tmp:
            torch.save(res.model_state, tmp)
        write_json(out / "train.json", res.summary())
        T.discard_checkpoint(ckpt)
        del views
    model.eval()
    order = np.random.default_rng(seed).permutation(np.asarray(te_idx))
    verify = np.sort(order[: (n_verify or len(order))])
    raw = ds.raw_tensor(verify.tolist())
    targets = np.asarray(ds.targets)[verify]
    norm = T.normalization_for(tcfg.normalize, ds.name)
    scored = model if norm is None else with_normalization(model, *norm)
    f = isp_oracle(scored, default, raw, targets, box, metric=metric, batch_size=batch_size, device=dev,
                   crop=tcfg.size)
    info = {"dataset": dataset, "preset": preset, "seed": seed, "epochs": tcfg.epochs, "n_verify": len(verify),
            "size": tcfg.size, "n_train": len(tr_idx), "model": str(path)}
    return ModelOracle(f, box, metric, default_point(box, default), info)


def cached_reliability(config: ReliabilityConfig, f: Oracle | None = None,
                       progress: bool = False) -> ReliabilityResult:
    """:func:`run_reliability`, or the result saved under ``config.out`` if it was made with the same settings.

    The settings compared include ``config.oracle``, a label of the oracle: give each oracle
    its own label (a :class:`ModelOracle` has one in ``.label``). When a saved result has
    another label, its cached ground truth is discarded too.
    """
    if not isinstance(config, ReliabilityConfig):
        raise TypeError(f"config: expected a ReliabilityConfig, got {type(config).__name__}")
    if config.out is not None:
        out = Path(config.out)
        if (out / "result.json").exists():
            saved = read_json(out / "result.json")["config"]
            if saved == json.loads(json.dumps(config.resolved().to_dict())):
                return ReliabilityResult.load(out)
            if saved.get("oracle") != config.oracle and (out / "ground_truth.npz").exists():
                (out / "ground_truth.npz").unlink()
    return run_reliability(config, f, progress=progress)


def reliability_sweep(config: ReliabilityConfig, f: Oracle | None, hs: Sequence[float],
                      progress: bool = False) -> dict[float, ReliabilityResult]:
    """One (cached) :func:`run_reliability` per threshold ``h`` in ``hs``; results keyed by ``h``.

    Each run is saved under ``config.out / "h=<h>"``. Wrap the oracle in :class:`MemoOracle`
    (a :class:`ModelOracle` already is one) so the dense grid and the random samples are
    evaluated once for all thresholds; GP sampling depends on ``h`` and costs new evaluations.
    """
    if not len(hs):
        raise ValueError("hs: expected at least one threshold")
    for h in hs:
        check_range(h, "hs")
    runs = {}
    for h in sorted({float(h) for h in hs}):
        out = None if config.out is None else Path(config.out) / f"h={h:g}"
        runs[h] = cached_reliability(replace(config, h=h, out=out), f, progress=progress)
    return runs


def _sweep_defaults(runs, h, budget):
    if isinstance(runs, ReliabilityResult):
        runs = {runs.config.h: runs}
    if not isinstance(runs, dict) or not runs:
        raise TypeError("runs: expected a ReliabilityResult or a non-empty {h: ReliabilityResult} dict")
    hs = sorted(runs)
    h = hs[len(hs) // 2] if h is None else float(h)
    check_choice(h, hs, "h")
    budgets = runs[h].config.budgets
    budget = max(budgets) if budget is None else budget
    check_choice(budget, budgets, "budget")
    return runs, h, budget


def reliability_figure(runs, h: float | None = None, budget: int | None = None, *, classifier: str | None = None,
                       rebalancer: str | None = None, dims=(0, 1), slice_at=None, mark=None):
    """The explorer's picture: the true map and the maps predicted after random and GP sampling.

    Args:
        runs: ``{h: ReliabilityResult}`` (:func:`reliability_sweep`) or one result.
        h: the threshold shown (default: the middle one of ``runs``).
        budget: the sampling budget (default: the largest).
        classifier, rebalancer: the distortion classifier and rebalancing shown (defaults:
            random forest, else the first; the config's last rebalancer, SMOTE-GP in the chapter).
        dims, slice_at: the 2-D slice (see :func:`plot_map`).
        mark: optional box point to mark with a star (e.g. the training configuration).
    Panels: the true metric with the boundary ``f = h`` (red); for each sampler of the run,
    the predicted minority region (grey) with the sampled points (filled red: minority), the
    true boundary, the minority points found and the F1 on the dense grid (seed of the first run).
    """
    import matplotlib.pyplot as plt

    runs, h, budget = _sweep_defaults(runs, h, budget)
    result = runs[h]
    c = result.config
    sl = _map_slice(result, dims, slice_at)
    rebalancer = _pick(c.rebalancers, rebalancer, "rebalancer")
    classifier = _pick(c.classifiers, classifier, "classifier")
    seed = c.seeds[0]
    t2, a0, a1, ext = sl["truth"], sl["a0"], sl["a1"], sl["extent"]
    side = "reliable" if result.minority_reliable else "failing"
    fig, axes = plt.subplots(1, 1 + len(c.samplers), figsize=(3.6 * (1 + len(c.samplers)), 3.4),
                             constrained_layout=True)
    im = axes[0].imshow(t2.T, origin="lower", extent=ext, aspect="auto", cmap="viridis")
    fig.colorbar(im, ax=axes[0], label=c.metric)
    share = float(result.grid_labels.mean())
    axes[0].set_title(f"true map, h = {h:g}\nminority: {side} side, {share:.0%} of the grid", fontsize=9)
    for ax, sampler in zip(axes[1:], c.samplers):
        i = _row_index(result, seed, sampler, budget, rebalancer, classifier)
        ax.imshow(sl["take"](result.predictions[i]).T, origin="lower", extent=ext, aspect="auto", cmap="Greys",
                  vmin=0, vmax=1.6)
        s = result.samples[f"{sampler}/{seed}"].head(budget)
        pos = (s.values >= h) == result.minority_reliable
        ax.scatter(s.points[~pos, dims[0]], s.points[~pos, dims[1]], s=12, facecolors="none",
                   edgecolors="tab:orange")
        ax.scatter(s.points[pos, dims[0]], s.points[pos, dims[1]], s=16, c="tab:red")
        ax.set_title(f"{sampler} sampling, {budget} points: {int(pos.sum())} minority\n"
                     f"{classifier} + {rebalancer}: F1 {result.rows[i]['f1']:.2f}", fontsize=9)
    for ax in axes:
        if t2.min() < h <= t2.max():
            ax.contour(a0, a1, t2.T, levels=[h], colors="tab:red", linewidths=1.2)
        if mark is not None:
            m = np.asarray(mark, dtype=np.float64).reshape(-1)
            ax.plot(m[dims[0]], m[dims[1]], marker="*", ms=12, c="white", mec="black")
        ax.set_xlabel(c.box.names[dims[0]])
        ax.set_ylabel(c.box.names[dims[1]])
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
    return fig


def explore_reliability(runs, *, classifier: str | None = None, rebalancer: str | None = None, mark=None):
    """An ipywidgets explorer over cached runs: sliders for the threshold ``h`` and the budget.

    Every state it offers is precomputed (:func:`reliability_sweep`; smaller budgets are the
    first points of the largest), so it answers at once. Its initial state is
    ``reliability_figure(runs, classifier=..., rebalancer=..., mark=...)``.
    """
    import ipywidgets as w

    from ..widgets import _png

    runs, h0, b0 = _sweep_defaults(runs, None, None)
    h = w.SelectionSlider(options=sorted(runs), value=h0, description="h")
    budget = w.SelectionSlider(options=sorted(runs[h0].config.budgets), value=b0, description="budget")
    text = w.HTML()
    image = w.Image(format="png")

    def render(_=None):
        r = runs[h.value]
        c = r.config
        reb, clf = _pick(c.rebalancers, rebalancer, "rebalancer"), _pick(c.classifiers, classifier, "classifier")
        text.value = f"h = {h.value:g}, budget {budget.value}, {clf} + {reb}: " + "; ".join(
            f"<b>{s}</b> F1 {r.rows[_row_index(r, c.seeds[0], s, budget.value, reb, clf)]['f1']:.3f}"
            for s in c.samplers)
        image.value = _png(reliability_figure(runs, h.value, budget.value, classifier=classifier,
                                              rebalancer=rebalancer, mark=mark))

    for ctl in (h, budget):
        ctl.observe(render, names="value")
    render()
    return w.VBox([w.HBox([h, budget]), text, image])
