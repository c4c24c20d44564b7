"""Raw datasets: synthetic (embedded default) and the paper's real datasets."""

from .base import DATASET_NAMES, RawDataset, stratified_kfold

__all__ = ["DATASET_NAMES", "RawDataset", "stratified_kfold"]
