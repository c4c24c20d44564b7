"""The image signal processing (ISP) data models: static reference and differentiable torch pipeline.

Heavy parts load on first use: ``rawdrift.isp.Pipeline`` imports the torch pipeline
(and the demosaicing module), ``rawdrift.isp.process_static`` the numpy reference.
"""

from .camera import RAW_DRONE, RAW_MICROSCOPY, Camera
from .configs import CONFIGS, parse_config

__all__ = ["Camera", "RAW_MICROSCOPY", "RAW_DRONE", "CONFIGS", "parse_config", "Pipeline", "process_static", "STAGES", "parity_table", "gradient_norms"]


def __getattr__(name):
    if name in ("Pipeline", "STAGES"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "process_static":
        from .static import process_static

        return process_static
    if name in ("parity_table", "gradient_norms"):
        from . import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'rawdrift.isp' has no attribute {name!r}")
