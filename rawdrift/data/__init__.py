"""Raw datasets: synthetic (embedded default) and the paper's real datasets."""

from .base import DATASET_NAMES, RawDataset, stratified_kfold
from .imbalance import ImbalancedSubset, make_imbalanced
from .registry import get_dataset

__all__ = ["DATASET_NAMES", "ImbalancedSubset", "RawDataset", "get_dataset", "make_imbalanced", "stratified_kfold"]
