"""Raw datasets: synthetic (embedded default) and the paper's real datasets."""

from .base import DATASET_NAMES, RawDataset, stratified_kfold
from .registry import get_dataset

__all__ = ["DATASET_NAMES", "RawDataset", "stratified_kfold", "get_dataset"]
