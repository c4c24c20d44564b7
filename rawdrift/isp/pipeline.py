"""The torch data model: :class:`Pipeline` composes the stage modules.

``Pipeline.static(name, camera)`` reproduces one of the 12 static configurations
of :mod:`rawdrift.isp.static` (frozen, batched, CPU or CUDA);
``Pipeline.parametrized(camera)`` is the paper's differentiable data model
Phi_Proc^para, every continuous parameter an ``nn.Parameter`` initialised so
that it equals the static ``bi,s,ga`` configuration.

    BL -> DM -> WB -> CC -> YUV -> SH -> DN -> RGB -> clip -> GC

Physical ranges of the parametrized model (enforced by clamping the value used
in ``forward``; the stored parameter is left as the optimiser made it and gets
zero gradient while outside the range): black level in ``[0, 1)``, gamma ``>= 0.01``,
white-balance gains ``>= 1e-6`` when the camera's own gains are positive (the
Raw-Microscopy gains, negative as released by the authors, stay unconstrained).
The colour matrix and the filter kernels are unconstrained. The gamma uses the
gradient-safe form of :func:`~rawdrift.isp.gamma.gamma_correct`.

Custom stages: :meth:`Pipeline.insert_stage` adds any ``nn.Module`` (a tone curve,
a vignetting model, ...) right after one of the stages, e.g.
``Pipeline.static("bi,s,ga", camera).insert_stage(ToneMap(0.5), after="gc")``.
A pipeline with inserted stages runs every stage on its own (the path used by
``track_stages``), so it is somewhat slower than the fused path; the inserted
module's parameters are the pipeline's parameters (``extra.<name>.*``) but belong
to none of the groups of :meth:`Pipeline.param_groups`.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor, nn

from .._checks import check_finite, check_image
from ..raw.cfa import site_map
from . import fused
from .black_level import BL_MAX, BlackLevel
from .camera import Camera
from .color import RGB_FROM_YUV, YUV_FROM_RGB, ColorCorrection, rgb_to_yuv, yuv_to_rgb
from .configs import DEMOSAIC_CODES, parse_config
from .denoise import Denoise
from .gamma import GammaCorrection, _display_gamma_
from .sharpen import Sharpen
from .white_balance import WhiteBalance

#: Stage codes in processing order, and the attribute holding each stage module.
STAGES = ("bl", "dm", "wb", "cc", "sh", "dn", "gc")
STAGE_MODULES = {
    "bl": "black_level",
    "dm": "demosaic",
    "wb": "white_balance",
    "cc": "color_correction",
    "sh": "sharpen",
    "dn": "denoise",
    "gc": "gamma_correction",
}
#: Most pixels one worker processes at a time when no gradient is needed (four
#: 256x256 images: their intermediates stay in the CPU cache, whole-batch tensors do
#: not and run memory-bound; fewer, larger chunks also cut the per-op Python cost
#: that the image-parallel workers share under the GIL).
CHUNK_PIXELS = 4 * 256 * 256
#: The same for Menon's demosaicing, whose float64 decision and many intermediates need
#: about four times the memory per image. Measured on the idle 2-core machine
#: (me,s,me / me,u,ga, images/s, three rounds): one-image chunks 155-177 / 138-165,
#: two-image 199-210 / 180-192, four-image 184-195 / 175-176.
MENON_CHUNK_PIXELS = 2 * 256 * 256
#: Keys of :attr:`Pipeline.stages` when ``track_stages`` is on ("sh" and "dn" are shown in RGB).
TRACKED = ("raw",) + STAGES
#: Stages after which :meth:`Pipeline.insert_stage` can add a module, with what the module receives.
INSERT_POINTS = {
    "bl": "(B, 1, H, W) mosaic, black level subtracted",
    "dm": "(B, 3, H, W) camera RGB (linear)",
    "wb": "(B, 3, H, W) white-balanced camera RGB (linear)",
    "cc": "(B, 3, H, W) linear sRGB, may leave [0, 1]",
    "dn": "(B, 3, H, W) linear sRGB after sharpening and denoising, before clip and gamma",
    "gc": "(B, 3, H, W) the final view in [0, 1] (the module's output becomes the view)",
}


class Pipeline(nn.Module):
    """A raw-to-RGB data model ``(B, 1, H, W) -> (B, 3, H, W)`` in [0, 1].

    Args:
        black_level, demosaic, white_balance, color_correction, sharpen, denoise, gamma_correction:
            the stage modules.
        track_stages: keep every intermediate view in :attr:`stages` (a dict by
            stage code, see :data:`TRACKED`); views that require grad keep their
            ``.grad`` after backward (``retain_grad``).
        name: configuration name, for display.
    """

    def __init__(
        self,
        black_level: BlackLevel,
        demosaic: nn.Module,
        white_balance: WhiteBalance,
        color_correction: ColorCorrection,
        sharpen: Sharpen,
        denoise: Denoise,
        gamma_correction: GammaCorrection,
        *,
        track_stages: bool = False,
        name: str = "custom",
    ):
        super().__init__()
        self.black_level = black_level
        self.demosaic = demosaic
        self.white_balance = white_balance
        self.color_correction = color_correction
        self.sharpen = sharpen
        self.denoise = denoise
        self.gamma_correction = gamma_correction
        self.track_stages = bool(track_stages)
        self.name = name
        self.stages: dict[str, Tensor] = {}
        self.extra = nn.ModuleDict()
        self.extra_after: dict[str, str] = {}
        #: Allow the compiled CPU kernels of :mod:`rawdrift.isp.fused` when no gradient is needed.
        self.fused = True

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def static(
        cls,
        name: str,
        camera: Camera,
        *,
        channels: str = "y",
        preserve_range: bool = True,
        track_stages: bool = False,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> "Pipeline":
        """The frozen torch twin of ``process_static(raw, name, camera)``.

        >>> from rawdrift.isp.camera import RAW_DRONE
        >>> Pipeline.static("ma,u,me", RAW_DRONE)(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
        """
        from .demosaic import Demosaic

        dm, sh, dn = parse_config(name)
        _check_camera(camera)
        p = cls(
            BlackLevel(camera.black_level),
            Demosaic(DEMOSAIC_CODES[dm], pattern=camera.pattern),
            WhiteBalance(camera.white_balance),
            ColorCorrection(camera.color_matrix),
            Sharpen(sh, channels=channels, preserve_range=preserve_range),
            Denoise(dn, channels=channels),
            GammaCorrection(camera.gamma),
            track_stages=track_stages,
            name=name,
        )
        return p.freeze().to(dtype=dtype, device=device)

    @classmethod
    def parametrized(
        cls,
        camera: Camera,
        *,
        channels: str = "y",
        track_stages: bool = False,
        dtype: torch.dtype = torch.float32,
        device=None,
    ) -> "Pipeline":
        """The differentiable data model: every continuous parameter learnable, defaults = static ``bi,s,ga``.

        Parameters: ``bl (4,)``, demosaic ``kernels (3, 3, 3)``, ``wb (3,)``, ``M (3, 3)``,
        sharpening ``kernel (3, 3)``, blur ``kernel (5, 5)``, ``gamma ()``.

        >>> from rawdrift.isp.camera import RAW_DRONE
        >>> sorted(k for k, v in Pipeline.parametrized(RAW_DRONE).param_groups().items() if v)
        ['bl', 'cc', 'dm', 'dn', 'gc', 'sh', 'wb']
        """
        from .demosaic import Demosaic

        _check_camera(camera)
        p = cls(
            BlackLevel(camera.black_level, learnable=True),
            Demosaic("bilinear", pattern=camera.pattern, learnable=True),
            WhiteBalance(camera.white_balance, learnable=True, positive=all(g > 0 for g in camera.white_balance)),
            ColorCorrection(camera.color_matrix, learnable=True),
            Sharpen("s", channels=channels, learnable=True),
            Denoise("ga", channels=channels, learnable=True),
            GammaCorrection(camera.gamma, learnable=True, differentiable=True),
            track_stages=track_stages,
            name="parametrized",
        )
        return p.to(dtype=dtype, device=device)

    # -- parameters ---------------------------------------------------------------------------
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Learnable parameters by stage code (empty lists for stages without any)."""
        return {code: list(getattr(self, STAGE_MODULES[code]).parameters()) for code in STAGES}

    def freeze(self) -> "Pipeline":
        """Stop gradients to every parameter (in place); returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def unfreeze(self) -> "Pipeline":
        """Let gradients reach every parameter again (in place); returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(True)
        return self

    def insert_stage(self, module: nn.Module, after: str = "gc", name: str = "extra") -> "Pipeline":
        """Run ``module`` right after stage ``after`` (in place; returns ``self``).

        Args:
            module: an ``nn.Module`` mapping the tensor it receives (see
                :data:`INSERT_POINTS`) to a tensor of the same shape. Its parameters
                keep their ``requires_grad``; call :meth:`freeze` afterwards for a
                frozen pipeline.
            after: one of :data:`INSERT_POINTS` (``"sh"`` is not offered: sharpening
                works in YUV and hands its result straight to denoising).
            name: a new name for the stage; it becomes a key of :attr:`stages` when
                ``track_stages`` is on. Several stages after the same point run in
                the order they were inserted.

        >>> from rawdrift.isp.camera import RAW_DRONE
        >>> p = Pipeline.static("bi,s,ga", RAW_DRONE).insert_stage(nn.Identity(), after="gc", name="tone")
        >>> p(torch.rand(1, 1, 8, 8)).shape, p.extra_after
        (torch.Size([1, 3, 8, 8]), {'tone': 'gc'})
        """
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
        if after not in INSERT_POINTS:
            raise ValueError(f"after: expected one of {tuple(INSERT_POINTS)}, got {after!r}")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name: expected a Python identifier, got {name!r}")
        if name in self.extra or name in TRACKED:
            raise ValueError(f"name: {name!r} is already a stage of this pipeline")
        if hasattr(self.extra, name):
            raise ValueError(f"name: {name!r} is reserved (an nn.Module attribute); choose another")
        ref = next(iter(self.parameters()), None)
        if ref is not None:  # follow the pipeline's device and dtype
            module.to(device=ref.device, dtype=ref.dtype)
        self.extra[name] = module
        self.extra_after[name] = after
        return self

    # -- forward ------------------------------------------------------------------------------
    def forward(self, raw: Tensor) -> Tensor:
        """Process ``(B, 1, H, W)`` raw mosaics (even ``H``, ``W``) into ``(B, 3, H, W)`` views in [0, 1].

        Three paths, one result (equal up to float rounding, all within the parity
        tolerance): with ``track_stages`` every stage runs on its own and every view
        is kept; otherwise WB, CC and RGB->YUV are fused into one 3x3 matrix, SH and DN
        filter only the selected channels, and YUV->RGB is one more 3x3 matrix. When
        no gradient is needed (``torch.no_grad()`` or a frozen pipeline on a plain
        input) a CPU batch is also split into chunks of a few images (see
        :data:`CHUNK_PIXELS`), processed with in-place arithmetic so that every
        intermediate stays in the CPU cache, by ``torch.get_num_threads()``
        image-parallel worker threads that each run torch on one intra-op thread
        (the thread count is restored afterwards). On that no-grad CPU path a float32
        batch of a static-like pipeline (luma-only SH/DN, exact gamma) goes to the
        compiled kernels of :mod:`rawdrift.isp.fused` instead of torch ops, in the
        same chunks and threads; ``self.fused = False`` (or ``RAWDRIFT_FUSED=0``) keeps
        it on torch ops. Both are held to the static reference by the same tests.
        """
        check_image(raw, "Pipeline: raw", channels=1, even=True, min_size=2)
        if self.track_stages or len(self.extra):
            return self._forward_stages(raw)
        self.stages = {}
        if torch.is_grad_enabled() and (raw.requires_grad or any(p.requires_grad for p in self.parameters())):
            return self._forward_fused(raw, self._prepare(raw, grad=True), grad=True)
        with torch.no_grad():
            mats = self._prepare(raw)
            b, _, h, w = raw.shape
            menon = getattr(self.demosaic, "method", None) == "menon2007"
            chunk = max(1, (MENON_CHUNK_PIXELS if menon else CHUNK_PIXELS) // (h * w))
            if raw.device.type != "cpu":
                return self._forward_fused(raw, mats, grad=False)
            plan = fused.plan(self, raw, mats)
            if plan is None and b == 1:
                return self._forward_fused(raw, mats, grad=False)
            workers = min(torch.get_num_threads(), b)
            chunk = min(chunk, -(-b // workers))  # every worker gets a share
            starts = range(0, b, chunk)
            workers = min(workers, len(starts))
            out = raw.new_empty(b, 3, h, w)
            if plan is not None:
                mosaics = raw.detach().reshape(b, h, w).contiguous().numpy()
                views = out.numpy()
                gamma = self.gamma_correction.gamma.detach()

            def run(i: int) -> None:
                with torch.no_grad():  # grad mode is per thread
                    if plan is None:
                        self._forward_fused(raw[i : i + chunk], mats, grad=False, out=out[i : i + chunk])
                    else:  # compiled, releases the GIL; then the same exact gamma as the torch path
                        fused.process_chunk(mosaics[i : i + chunk], views[i : i + chunk], *plan)
                        _display_gamma_(out[i : i + chunk], gamma)

            with _single_intraop_thread():
                if workers <= 1:
                    for i in starts:
                        run(i)
                else:  # one image-parallel worker per torch thread, each on one intra-op thread
                    with ThreadPoolExecutor(workers, thread_name_prefix="rawdrift-isp") as pool:
                        list(pool.map(run, starts))
            return out

    def _prepare(self, raw: Tensor, grad: bool = False) -> dict:
        """Per-forward constants, parameters validated once.

        ``to_yuv = YUV_FROM_RGB @ M @ diag(wb)`` and ``to_rgb = RGB_FROM_YUV`` in
        ``raw``'s dtype (differentiable in ``wb`` and ``M``); without grad also the
        black-level map and the two filter functions.
        """
        wb = self.white_balance.gains()
        M = self.color_correction.M
        check_finite(wb, "white_balance: wb")
        check_finite(M, "color_correct: M")
        wb, M = wb.to(raw), M.to(raw)
        prep = {"to_yuv": YUV_FROM_RGB.to(raw) @ (M * wb), "to_rgb": RGB_FROM_YUV.to(raw)}
        if not grad:
            bl = self.black_level.bl.clamp(0.0, BL_MAX)
            check_finite(bl, "black_level: bl")
            prep["bl_map"] = site_map(bl.to(raw), *raw.shape[-2:])
            prep["sharpen"] = self.sharpen.filter_fn(raw.dtype, raw.device)
            prep["denoise"] = self.denoise.filter_fn(raw.dtype, raw.device)
        return prep

    def _forward_fused(self, raw: Tensor, prep: dict, grad: bool, out: Tensor | None = None) -> Tensor:
        to_yuv, to_rgb = prep["to_yuv"], prep["to_rgb"]
        x = self.demosaic(self.black_level(raw) if grad else raw - prep["bl_map"])
        b, _, h, w = x.shape
        yuv = torch.matmul(to_yuv, x.reshape(b, 3, h * w)).reshape(b, 3, h, w)
        channels = self.sharpen.channels
        if grad or channels != self.denoise.channels:
            yuv = self.denoise(self.sharpen(yuv))
        elif channels == "yuv":
            yuv = prep["denoise"](prep["sharpen"](yuv))
        else:  # luma only: U and V pass through untouched
            yuv[:, :1].copy_(prep["denoise"](prep["sharpen"](yuv[:, :1])))
        x = torch.matmul(to_rgb, yuv.reshape(b, 3, h * w)).reshape(b, 3, h, w)
        gc = self.gamma_correction
        if grad or gc.differentiable:
            x = gc(x)
            if out is not None:
                out.copy_(x)
                return out
            return x
        return _display_gamma_(x, gc.gamma, out)

    def _forward_stages(self, raw: Tensor) -> Tensor:
        """Every stage on its own, inserted stages included; views kept in :attr:`stages` when tracking."""
        stages: dict[str, Tensor] = {}
        track = self.track_stages

        def keep(code: str, x: Tensor) -> Tensor:
            if track:
                if x.requires_grad:
                    x.retain_grad()
                stages[code] = x
            for name, after in self.extra_after.items():
                if after == code:
                    x = self.extra[name](x)
                    if track:
                        if x.requires_grad:
                            x.retain_grad()
                        stages[name] = x
            return x

        keep("raw", raw)
        x = keep("bl", self.black_level(raw))
        x = keep("dm", self.demosaic(x))
        x = keep("wb", self.white_balance(x))
        x = keep("cc", self.color_correction(x))
        yuv = self.sharpen(rgb_to_yuv(x))
        if track:
            keep("sh", yuv_to_rgb(yuv))
        x = keep("dn", yuv_to_rgb(self.denoise(yuv)))
        x = keep("gc", self.gamma_correction(x))
        self.stages = stages
        return x

    def extra_repr(self) -> str:
        extra = f", extra_after={self.extra_after}" if self.extra_after else ""
        return f"name={self.name!r}, track_stages={self.track_stages}{extra}"


@contextlib.contextmanager
def _single_intraop_thread():
    """Run torch CPU ops on one thread inside the block, then restore the thread count.

    One image's tensors are too small for OpenMP to pay off: every parallel op ends
    in a barrier, and on a loaded machine the waiting thread is often descheduled,
    which cost 10-100x on per-image ops in our measurements (see rawdrift/bench.py).
    """
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


def _check_camera(camera) -> None:
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a rawdrift.isp.Camera, got {type(camera).__name__}")
