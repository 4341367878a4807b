"""Datasets: each family is one module that registers a loader by name."""

from .registry import DatasetSplits, dataset_names, load_dataset, register_dataset

__all__ = ["DatasetSplits", "dataset_names", "load_dataset", "register_dataset"]
