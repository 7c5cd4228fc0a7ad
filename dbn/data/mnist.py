"""The embedded MNIST copy: gzipped IDX files verified against their ``SHA256SUMS``.

``DATASET_DIR`` holds the four standard files; ``verify_checksums`` checks them and
``read_idx`` parses one.  ``_embedded_raw`` returns the verified raw uint8 arrays
(cached per directory); ``dbn.data.splits.load`` turns them into splits.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from dbn.provenance import sha256_file


DATASET_DIR = Path(__file__).resolve().parent / "embedded"
"""Directory of the embedded MNIST copy (gzipped IDX files and ``SHA256SUMS``)."""


FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
"""IDX file name of each raw MNIST array."""


CHECKSUM_FILE = "SHA256SUMS"


IMAGE_SHAPE = (28, 28)


N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]


_IDX_DTYPES = {0x08: np.uint8}


def verify_checksums(data_dir: str | Path) -> None:
    """Check the four MNIST files in `data_dir` against its ``SHA256SUMS``.

    Parameters
    ----------
    data_dir : str or Path
        Directory holding the files of :data:`FILES` and ``SHA256SUMS``
        (``sha256sum`` format: ``<hex digest>  <file name>`` per line).

    Raises
    ------
    FileNotFoundError
        If ``SHA256SUMS`` or one of the data files is missing.
    ValueError
        If a line of ``SHA256SUMS`` is not ``<64 hex digits> <file name>`` (the
        message names the file and the line), ``SHA256SUMS`` has no entry for a data
        file, or a digest differs.
    """
    data_dir = Path(data_dir)
    sums_path = data_dir / CHECKSUM_FILE
    if not sums_path.is_file():
        raise FileNotFoundError(f"checksum file {CHECKSUM_FILE!r} is missing from {data_dir}")
    expected = {}
    try:
        lines = sums_path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{sums_path} is not a text file ({err}); allowed: lines "
                         "'<sha256 hex digest>  <file name>'") from None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            parts = line.split(maxsplit=1)
            digest = parts[0]
            if (len(parts) != 2 or len(digest) != 64
                    or any(c not in "0123456789abcdefABCDEF" for c in digest)):
                raise ValueError(f"{sums_path} line {number} is malformed: {line!r}; allowed: "
                                 "'<sha256 hex digest (64 characters)>  <file name>'")
            expected[parts[1].strip().lstrip("*")] = digest.lower()
    for file_name in FILES.values():
        path = data_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(f"MNIST file {file_name!r} is missing from {data_dir}")
        if file_name not in expected:
            raise ValueError(f"{sums_path} has no checksum for {file_name!r}")
        actual = sha256_file(path)
        if actual != expected[file_name]:
            raise ValueError(
                f"checksum mismatch for {file_name!r} in {data_dir}: "
                f"expected sha256 {expected[file_name]}, got {actual}"
            )


def read_idx(path: str | Path) -> np.ndarray:
    """Parse a gzipped IDX file (the MNIST distribution format).

    The header is two zero bytes, a dtype code (only ``0x08``, unsigned
    byte, is supported), the number of dimensions ``ndim``, then ``ndim``
    big-endian uint32 sizes; the data follow in C order.

    Parameters
    ----------
    path : str or Path
        Gzipped IDX file.

    Returns
    -------
    numpy.ndarray
        Read-only uint8 array with the shape given in the header, e.g.
        ``(60000, 28, 28)`` for training images, ``(60000,)`` for labels.

    Raises
    ------
    ValueError
        If the file is not gzip, has a bad magic number or dtype code, or its
        size does not match the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError) as err:
        raise ValueError(f"{path}: not a valid gzip file ({err})") from err
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise ValueError(f"{path}: bad IDX magic number {data[:4].hex() or '(empty)'}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unsupported IDX dtype code {code:#04x} (only 0x08, uint8)")
    offset = 4 + 4 * ndim
    if ndim == 0 or len(data) < offset:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(
            f"{path}: IDX header shape {shape} needs {int(np.prod(shape))} bytes "
            f"of data, file has {len(data) - offset}"
        )
    return np.frombuffer(data, _IDX_DTYPES[code], offset=offset).reshape(shape)


@functools.lru_cache(maxsize=4)
def _embedded_raw(data_dir: Path) -> tuple[np.ndarray, ...]:
    """Verified raw uint8 ``(x_train, y_train, x_test, y_test)``, cached per directory."""
    verify_checksums(data_dir)
    raw = {key: read_idx(data_dir / file_name) for key, file_name in FILES.items()}
    for split in ("train", "test"):
        x, y = raw[f"x_{split}"], raw[f"y_{split}"]
        _check_raw(data_dir / FILES[f"x_{split}"], data_dir / FILES[f"y_{split}"], x, y, 10)
    return raw["x_train"], raw["y_train"], raw["x_test"], raw["y_test"]


def _check_raw(x_source, y_source, x, y, n_classes):
    """Images (n, 28, 28) and labels (n,) in 0..n_classes-1, else a ValueError naming
    the source (a file passes its checksum but may still hold foreign data)."""
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{x_source}: images have shape {x.shape}; allowed: (n, 28, 28)")
    if y.shape != x.shape[:1]:
        raise ValueError(f"{y_source}: labels have shape {y.shape} but the images "
                         f"{x_source} have shape {x.shape}; allowed: one label per image")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = np.flatnonzero((y < 0) | (y >= n_classes))
        raise ValueError(f"{y_source}: {len(bad)} labels outside 0..{n_classes - 1} (e.g. "
                         f"{int(y[bad[0]])} at index {int(bad[0])}); the file is not "
                         f"{n_classes}-class labels")
