"""MNIST-like data: the embedded MNIST copy (``mnist``), prepared tfds datasets
(``tfds``), train/validation/test splits (``splits``) and the ``tf.data`` pipeline with
binarization (``pipeline``).  Importing it does not import TensorFlow."""

from dbn.data.mnist import (CHECKSUM_FILE, DATASET_DIR, FILES, IMAGE_SHAPE, N_PIXELS, read_idx,
                            verify_checksums)
from dbn.data.pipeline import BINARIZATIONS, balanced_subset, binarize, epoch_datasets, to_dataset
from dbn.data.splits import SOURCES, LikelihoodSplits, Splits, likelihood_splits, load
from dbn.data.tfds import TFDS_NAMES

__all__ = ["BINARIZATIONS", "CHECKSUM_FILE", "DATASET_DIR", "FILES", "IMAGE_SHAPE", "N_PIXELS",
           "SOURCES", "TFDS_NAMES", "Splits", "balanced_subset", "binarize", "epoch_datasets",
           "load", "read_idx", "to_dataset", "verify_checksums"]
