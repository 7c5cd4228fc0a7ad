"""A prepared ``tensorflow_datasets`` dataset of 28x28x1 images as raw arrays.

Nothing is downloaded: an unprepared dataset raises ``FileNotFoundError`` at once (an
offline ``tfds.load`` retries a download for minutes).
"""

from __future__ import annotations

import numpy as np

from dbn.data.mnist import IMAGE_SHAPE, _check_raw


TFDS_NAMES = ("mnist", "fashion_mnist", "kmnist", "emnist/digits", "emnist/letters")
"""Examples of tfds datasets with 28x28x1 images that ``load(source="tfds")`` accepts."""


def _tfds_raw(name: str, data_dir) -> tuple:
    """Raw ``(x_train, y_train, x_test, y_test, n_classes)`` of a prepared tfds dataset."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except ValueError as err:  # tfds' DatasetNotFoundError is a ValueError
        raise ValueError(
            f"unknown tfds dataset {name!r} ({str(err).splitlines()[0]}); "
            f"28x28 grayscale examples: {', '.join(TFDS_NAMES)}"
        ) from None
    keys = builder.info.supervised_keys
    features = builder.info.features
    if keys is None or tuple(features[keys[0]].shape) != (*IMAGE_SHAPE, 1):
        shape = None if keys is None else features[keys[0]].shape
        raise ValueError(
            f"tfds dataset {name!r} has no 28x28x1 (image, label) pairs (image shape {shape}); "
            f"use a 28x28 grayscale dataset such as {', '.join(TFDS_NAMES)}"
        )
    # `as_dataset` never downloads. `is_prepared()` is only consulted after a
    # failure: under `tfds.testing.mock_data` it is False although the mocked
    # `as_dataset` works.
    try:
        train, test = builder.as_dataset(split=["train", "test"], as_supervised=True)
    except Exception as err:
        if builder.is_prepared():
            raise
        alternative = 'load("mnist", source="embedded"), or ' if name == "mnist" else ""
        raise FileNotFoundError(
            f"tfds dataset {name!r} is not downloaded/prepared in {builder.data_dir_root}. "
            f"It is not downloaded automatically because this machine may be offline. "
            f"Offline alternative: {alternative}run `tfds build {name}` (or "
            f"tfds.builder({name!r}).download_and_prepare()) on a machine with network "
            f"access and pass the resulting directory as data_dir=."
        ) from err

    def to_numpy(ds):
        # Batched reads; batch_size=-1 crashes under mock_data (unknown split sizes).
        xs, ys = zip(*tfds.as_numpy(ds.batch(10_000)))
        return np.concatenate(xs)[..., 0], np.concatenate(ys)

    x_train, y_train = to_numpy(train)
    x_test, y_test = to_numpy(test)
    n_classes = features[keys[1]].num_classes
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        _check_raw(f"tfds {name!r} {split} images", f"tfds {name!r} {split} labels", x, y, n_classes)
    return x_train, y_train, x_test, y_test, n_classes
