"""Datasets: each family is one module that registers a loader by name."""

from .registry import DatasetSplits, data_status, dataset_names, load_dataset, register_dataset, register_file_dataset

__all__ = ["DatasetSplits", "data_status", "dataset_names", "load_dataset", "register_dataset", "register_file_dataset"]
