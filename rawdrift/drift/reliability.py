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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .._checks import check_choice, check_int, check_range
from ..io import read_json, write_json, write_npz, write_text

Oracle = Callable[[np.ndarray], np.ndarray]

SAMPLERS = ("random", "gp")
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
    >>> box.scale([[2.0, 0.5]])
    array([[0.5 , 0.25]])
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
    12.5761
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
                kernel: str = "matern") -> SampleSet:
    """GP-based sequential sampling that hunts for the minority side of ``f >= h``.

    Start with ``n_init`` uniform points. Then, with ``t`` points seen, fit a GP
    (scikit-learn ``GaussianProcessRegressor``: constant x anisotropic Matern-5/2
    (or RBF) with one length scale per axis on inputs scaled to ``[0, 1]^d``, plus a
    ``WhiteKernel``, ``normalize_y=True``) and take as next point the maximiser of

        ``q(c) = beta_t * sigma(c) + (mu(c) - h)``   (reliable side is the minority)
        ``q(c) = beta_t * sigma(c) + (h - mu(c))``   (failing side is the minority)

    with ``beta_t`` from :func:`beta_schedule` (or the constant ``beta``). The minority
    side is decided from the points seen so far (ties: reliable), so the search
    follows the rarer label even when it is the failing one. The paper writes
    ``beta * sigma`` (not GP-UCB's ``sqrt(beta) * sigma``); we follow the paper.

    The paper leaves the optimiser of ``q`` open. We maximise over ``n_candidates``
    uniform points of ``[0, 1]^d`` plus, around each of the 5 best, 40 Gaussian jitters
    (standard deviation 0.05, clipped to the box), and take the best of all.

    Returns a :class:`SampleSet` in sampling order, so ``.head(b)`` is the run under
    the smaller budget ``b`` (``beta_t`` depends only on ``t``).
    """
    _check_budget(box, budget, h)
    check_int(n_init, "n_init", minimum=1)
    check_int(n_candidates, "n_candidates", minimum=1)
    check_range(delta, "delta", 1e-12, 1.0)
    check_choice(kernel, ("matern", "rbf"), "kernel")
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
    """Dispatch to :func:`random_sampling` or :func:`gp_sampling` by name."""
    check_choice(sampler, SAMPLERS, "sampler")
    if sampler == "random":
        return random_sampling(f, box, budget, rng, h=h)
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
    the 3-D box, about 14% of the 2-D one), the minority side, as in the paper. ``dims``
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
