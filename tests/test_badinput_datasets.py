"""Bad inputs to dbn.datasets: each is a ValueError naming the argument, raised before
any file is read or any array is built; valid edge cases still work."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from dbn import data as datasets

MISSING_DIR = "/nonexistent/dbn-data"  # a bad argument must be named before files are read


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_train=2.5), r"n_train=2.5 must be an integer"),
    (dict(n_train=True), r"n_train=True must be an integer .*\(not a bool\)"),
    (dict(n_train=np.bool_(True)), r"n_train=np.True_ must be an integer"),
    (dict(n_train="100"), r"n_train='100' must be an integer"),
    (dict(seed=-1), r"seed=-1 must be an integer in \[0, "),
    (dict(seed=1.5), r"seed=1.5 must be an integer"),
    (dict(seed=None), r"seed=None must be an integer"),
    (dict(seed=True), r"seed=True must be an integer"),
    (dict(validation_size=100.0), r"validation_size=100.0 must be an integer"),
    (dict(validation_size=False), r"validation_size=False must be an integer"),
    (dict(label_budget=100.0), r"label_budget=100.0 must be an integer"),
    (dict(label_budget=True), r"label_budget=True must be an integer"),
    (dict(binarization=None), r"unknown binarization None"),
    (dict(source=None), r"unknown source None"),
    (dict(name=3), r"name=3 must be a dataset name"),
])
def test_load_names_bad_arguments_before_reading_files(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.load(data_dir=MISSING_DIR, **kwargs)


def test_load_valid_edge_cases():
    one = datasets.load(n_train=1)
    assert one.x_train.shape == (1, 784)
    numpy_ints = datasets.load(n_train=np.int64(20), seed=np.int32(3), validation_size=np.int64(5))
    plain = datasets.load(n_train=20, seed=3, validation_size=5)
    np.testing.assert_array_equal(numpy_ints.x_train, plain.x_train)
    assert datasets.load(validation_size=0, n_train=10).x_val.shape == (0, 784)


# --------------------------------------------------------------------------- binarize
@pytest.mark.parametrize("mode", ["none", "threshold", "stochastic"])
@pytest.mark.parametrize("make_x, match", [
    (lambda x: x * 255, r"x has values in \[0, 255\]; allowed: finite values in \[0, 1\]"),
    (lambda x: x - 0.5, r"x has values in \[-0.5, "),
    (lambda x: np.where(x > 0.9, np.nan, x), r"x contains NaN or inf"),
    (lambda x: np.where(x > 0.9, np.inf, x), r"x contains NaN or inf"),
    (lambda x: x.astype(str), r"x has dtype <U"),
], ids=["0-255", "negative", "nan", "inf", "strings"])
def test_binarize_refuses_data_outside_0_1(mode, make_x, match):
    x = np.linspace(0, 1, 50, dtype=np.float32).reshape(5, 10)
    with pytest.raises(ValueError, match=match):
        datasets.binarize(make_x(x), mode, seed=0)


@pytest.mark.parametrize("seed, match", [(-1, r"seed=-1 must be"), (1.5, r"seed=1.5 must be"),
                                         (True, r"seed=True must be"), ("0", r"seed='0' must be")])
def test_binarize_bad_seed(seed, match):
    with pytest.raises(ValueError, match=match):
        datasets.binarize(np.zeros((2, 3)), "stochastic", seed=seed)


def test_binarize_valid_edge_cases():
    x = np.array([[0.0, 0.5, 1.0]])
    assert datasets.binarize(x, "threshold").tolist() == [[0.0, 0.0, 1.0]]
    assert datasets.binarize(x, "stochastic", seed=np.random.SeedSequence(1)).shape == (1, 3)
    assert datasets.binarize(np.zeros((0, 784)), "stochastic", seed=0).shape == (0, 784)


# --------------------------------------------------------------------------- balanced_subset
@pytest.mark.parametrize("y, kwargs, match", [
    (np.r_[np.repeat(np.arange(10), 5), 10], {}, r"y has labels in \[0, 10\].*allowed: 0..9"),
    (np.r_[np.repeat(np.arange(10), 5), -1], {}, r"y has labels in \[-1, 9\]"),
    (np.repeat(np.arange(10), 5).astype(float), {}, r"y has dtype float64"),
    (np.repeat(np.arange(10), 5), dict(budget=10.0), r"label_budget=10.0 must be a positive multiple"),
    (np.repeat(np.arange(10), 5), dict(budget=True), r"label_budget=True must be"),
    (np.repeat(np.arange(10), 5), dict(seed=-3), r"seed=-3 must be"),
    (np.repeat(np.arange(10), 5), dict(n_classes=0), r"n_classes=0 must be an integer >= 1"),
    (np.repeat(np.arange(10), 5), dict(n_classes=2.0), r"n_classes=2.0 must be an integer"),
])
def test_balanced_subset_bad_inputs(y, kwargs, match):
    kwargs = {"budget": 20, "seed": 0, **kwargs}
    budget = kwargs.pop("budget")
    with pytest.raises(ValueError, match=match):
        datasets.balanced_subset(y, budget, **kwargs)


def test_balanced_subset_numpy_budget_ok():
    y = np.repeat(np.arange(10), 5)
    np.testing.assert_array_equal(datasets.balanced_subset(y, np.int64(20), seed=0),
                                  datasets.balanced_subset(y, 20, seed=0))


# --------------------------------------------------------------------------- to_dataset
@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=2.5), r"batch_size=2.5 must be an integer >= 1"),
    (dict(batch_size=True), r"batch_size=True must be an integer"),
    (dict(batch_size=0), r"batch_size=0 must be an integer >= 1"),
    (dict(seed=-1), r"seed=-1 must be"),
    (dict(shuffle="yes"), r"shuffle='yes' must be True or False"),
    (dict(drop_remainder=1), r"drop_remainder=1 must be True or False"),
    (dict(batches_per_element=1.0), r"batches_per_element=1.0 must be an integer"),
    (dict(binarization="sigmoid"), r"unknown binarization 'sigmoid'"),
    (dict(y=np.array([0.0, 1.0, 2.0, 3.0])), r"y has dtype float64"),
    (dict(y=np.array([0, 1, 2, -1])), r"y has labels in \[-1, 2\]"),
    (dict(y=np.array([0, 1, 2])), r"y has 3 labels but x has 4 rows"),
    (dict(x=np.full((4, 784), 255.0)), r"x has values in \[255, 255\]"),
    (dict(x=np.full((4, 784), np.nan)), r"x contains NaN"),
    (dict(x=np.zeros(784)), r"x has shape \(784,\)"),
])
def test_to_dataset_bad_inputs(kwargs, match):
    kwargs = {"x": np.zeros((4, 784)), **kwargs}
    with pytest.raises(ValueError, match=match):
        datasets.to_dataset(kwargs.pop("x"), **kwargs)


def test_to_dataset_numpy_scalars_ok():
    ds = datasets.to_dataset(np.zeros((4, 3)), np.arange(4), batch_size=np.int64(2),
                             seed=np.int64(1), shuffle=np.bool_(False))
    assert [b[1].numpy().tolist() for b in ds] == [[0, 1], [2, 3]]


# --------------------------------------------------------------------------- files
def _copy_embedded(tmp_path):
    for name in [*datasets.FILES.values(), datasets.CHECKSUM_FILE]:
        shutil.copy(datasets.DATASET_DIR / name, tmp_path / name)
    return tmp_path


def _rewrite(data_dir, key, change):
    """Apply ``change`` to the raw IDX bytes of file ``key`` and fix its checksum, so
    the file is checksum-consistent but holds foreign data."""
    path = data_dir / datasets.FILES[key]
    raw = bytearray(gzip.decompress(path.read_bytes()))
    change(raw)
    path.write_bytes(gzip.compress(bytes(raw)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sums = data_dir / datasets.CHECKSUM_FILE
    lines = [f"{digest}  {path.name}" if line.endswith(path.name) else line
             for line in sums.read_text().splitlines()]
    sums.write_text("\n".join(lines) + "\n")


def test_label_byte_200_in_a_checksum_consistent_file_is_refused(tmp_path):
    data_dir = _copy_embedded(tmp_path)

    def poison(raw):
        raw[8 + 1234] = 200  # header of a 1-D IDX file: 4 + 4 bytes

    _rewrite(data_dir, "y_test", poison)
    datasets.verify_checksums(data_dir)  # the checksums agree
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: 1 labels outside 0..9 "
                                         r"\(e.g. 200 at index 1234\)"):
        datasets.load(data_dir=data_dir)


def test_images_that_are_not_28x28_are_refused(tmp_path):
    data_dir = _copy_embedded(tmp_path)

    def reshape(raw):  # same bytes, header says 10000 x 14 x 56
        raw[8:12] = (14).to_bytes(4, "big")
        raw[12:16] = (56).to_bytes(4, "big")

    _rewrite(data_dir, "x_test", reshape)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: images have shape "
                                         r"\(10000, 14, 56\); allowed: \(n, 28, 28\)"):
        datasets.load(data_dir=data_dir)


@pytest.mark.parametrize("line", [
    "deadbeef",  # one field
    "train-images-idx3-ubyte.gz",  # no digest
    "zz" * 32 + "  train-images-idx3-ubyte.gz",  # not hex
    "ab" * 31 + "  train-images-idx3-ubyte.gz",  # 62 digits
])
def test_malformed_checksum_line_is_named(tmp_path, line):
    data_dir = _copy_embedded(tmp_path)
    sums = data_dir / datasets.CHECKSUM_FILE
    lines = sums.read_text().splitlines()
    sums.write_text("\n".join([lines[0], line, *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"SHA256SUMS line 2 is malformed: .*allowed: "
                                         r"'<sha256 hex digest \(64 characters\)>  <file name>'"):
        datasets.verify_checksums(data_dir)
