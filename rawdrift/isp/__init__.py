"""The image signal processing (ISP) data models: static reference and differentiable torch pipeline."""

from .camera import RAW_DRONE, RAW_MICROSCOPY, Camera

__all__ = ["Camera", "RAW_MICROSCOPY", "RAW_DRONE"]
