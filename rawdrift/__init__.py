"""rawdrift: physically faithful dataset-drift controls from raw sensor data.

The package pairs raw (Bayer) sensor data with an explicit, differentiable image
signal processing pipeline (the *data model*) and builds three drift controls on
top of it: drift synthesis, drift forensics and drift adjustment.

Importing the package is cheap: heavy modules (torch models, datasets, plots)
are imported only when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
