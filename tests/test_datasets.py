import gzip
import shutil
import struct
import time

import numpy as np
import pytest

from dbn import data as datasets


def _copy_embedded(tmp_path):
    for name in [*datasets.FILES.values(), datasets.CHECKSUM_FILE]:
        shutil.copy(datasets.DATASET_DIR / name, tmp_path / name)
    return tmp_path


def _write_idx(path, header: bytes, payload: bytes):
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def _epochs(ds, n):
    return [[tuple(t.numpy() for t in batch) if isinstance(batch, tuple) else batch.numpy() for batch in ds]
            for _ in range(n)]


# --- checksums and IDX parsing ---------------------------------------------


def test_embedded_checksums_ok():
    datasets.verify_checksums(datasets.DATASET_DIR)


def test_corrupted_file_is_named(tmp_path):
    data_dir = _copy_embedded(tmp_path)
    target = data_dir / datasets.FILES["y_test"]
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"checksum mismatch for 't10k-labels-idx1-ubyte.gz'.*expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}"):
        datasets.verify_checksums(data_dir)
    with pytest.raises(ValueError, match="checksum mismatch"):
        datasets.load(data_dir=data_dir)


def test_missing_file_is_named(tmp_path):
    data_dir = _copy_embedded(tmp_path)
    (data_dir / datasets.FILES["x_train"]).unlink()
    with pytest.raises(FileNotFoundError, match=r"'train-images-idx3-ubyte.gz' is missing from .*"):
        datasets.load(data_dir=data_dir)


def test_read_handcrafted_idx(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8)
    _write_idx(tmp_path / "a.gz", b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 4), values.tobytes())
    out = datasets.read_idx(tmp_path / "a.gz")
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.ravel(), values)


@pytest.mark.parametrize(
    "header, payload, message",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 3), b"abc", "bad IDX magic"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 3), b"abc", "unsupported IDX dtype code 0x0d"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 4), b"abc", r"shape \(4,\) needs 4 bytes"),
    ],
)
def test_bad_idx_raises(tmp_path, header, payload, message):
    path = tmp_path / "bad.gz"
    _write_idx(path, header, payload)
    with pytest.raises(ValueError, match=f"bad.gz.*{message}"):
        datasets.read_idx(path)


def test_not_gzip_raises(tmp_path):
    (tmp_path / "plain.gz").write_bytes(b"\x00\x00\x08\x01")
    with pytest.raises(ValueError, match="plain.gz: not a valid gzip file"):
        datasets.read_idx(tmp_path / "plain.gz")


# --- load: shapes, splits ----------------------------------------------------


def test_default_shapes_dtypes_ranges():
    s = datasets.load()
    assert (s.x_train.shape, s.x_val.shape, s.x_test.shape) == ((50_000, 784), (10_000, 784), (10_000, 784))
    assert (s.y_train.shape, s.y_val.shape, s.y_test.shape) == ((50_000,), (10_000,), (10_000,))
    for x, y in [(s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)]:
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    assert len(np.unique(s.x_train[:100])) > 2  # grey levels kept
    assert s.n_classes == 10 and s.name == "mnist"


def test_no_validation_gives_full_training_set():
    s = datasets.load(validation_size=0)
    assert s.x_train.shape == (60_000, 784) and s.x_val.shape == (0, 784) and s.y_val.shape == (0,)
    assert s.x_test.shape == (10_000, 784)


def test_split_deterministic_disjoint_and_covering():
    a, b, c = (datasets.load(seed=seed) for seed in (1, 1, 2))
    np.testing.assert_array_equal(a.train_index, b.train_index)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.val_index, c.val_index)
    assert np.intersect1d(a.train_index, a.val_index).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([a.train_index, a.val_index])), np.arange(60_000))
    # Rows really are the indexed training rows.
    full = datasets.load(validation_size=0, seed=5)
    original = np.empty_like(full.x_train)
    original[full.train_index] = full.x_train
    np.testing.assert_array_equal(original[a.val_index[:50]], a.x_val[:50])
    np.testing.assert_array_equal(original[a.train_index[:50]], a.x_train[:50])


def test_n_train_keeps_prefix_of_shuffled_rows():
    full, small = datasets.load(seed=3), datasets.load(seed=3, n_train=250)
    assert small.x_train.shape == (250, 784)
    np.testing.assert_array_equal(small.train_index, full.train_index[:250])
    np.testing.assert_array_equal(small.val_index, full.val_index)


def test_label_budget_balanced_subset_of_training_rows():
    full, s = datasets.load(seed=4), datasets.load(seed=4, label_budget=100)
    np.testing.assert_array_equal(np.bincount(s.y_train, minlength=10), np.full(10, 10))
    assert np.isin(s.train_index, full.train_index).all()
    assert len(np.unique(s.train_index)) == 100
    again = datasets.load(seed=4, label_budget=100)
    np.testing.assert_array_equal(again.train_index, s.train_index)
    # Applied after n_train.
    s = datasets.load(seed=4, n_train=1000, label_budget=50)
    assert np.isin(s.train_index, full.train_index[:1000]).all()


def test_balanced_subset_indices():
    y = np.repeat(np.arange(3), [5, 7, 4])
    idx = datasets.balanced_subset(y, 12, seed=0, n_classes=3)
    assert idx.dtype == np.int64 and len(np.unique(idx)) == 12
    np.testing.assert_array_equal(np.bincount(y[idx]), [4, 4, 4])
    np.testing.assert_array_equal(idx, datasets.balanced_subset(y, 12, seed=0, n_classes=3))


# --- binarization --------------------------------------------------------------


def test_threshold_and_none():
    x = np.array([[0.0, 0.5, 0.50001, 0.7, 1.0]])
    np.testing.assert_array_equal(datasets.binarize(x, "threshold"), [[0, 0, 1, 1, 1]])
    out = datasets.binarize(x, "none")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x.astype(np.float32))
    s = datasets.load(binarization="threshold", n_train=500)
    grey = datasets.load(n_train=500)
    for binary, g in [(s.x_train, grey.x_train), (s.x_val, grey.x_val), (s.x_test, grey.x_test)]:
        assert binary.dtype == np.float32
        np.testing.assert_array_equal(binary, (g > 0.5).astype(np.float32))


def test_stochastic_binarize_statistics():
    levels = np.array([0.0, 0.1, 0.5, 0.9, 1.0], dtype=np.float32)
    n = 2000
    draws = datasets.binarize(np.tile(levels, (n, 1)), "stochastic", seed=0)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    tolerance = 4 * np.sqrt(levels * (1 - levels) / n) + 1e-6
    assert (np.abs(draws.mean(axis=0) - levels) <= tolerance).all()
    np.testing.assert_array_equal(draws, datasets.binarize(np.tile(levels, (n, 1)), "stochastic", seed=0))
    assert not np.array_equal(draws, datasets.binarize(np.tile(levels, (n, 1)), "stochastic", seed=1))
    with pytest.raises(ValueError, match="seed=None"):
        datasets.binarize(levels, "stochastic")


def test_stochastic_load_fixed_draw():
    a = datasets.load(binarization="stochastic", seed=7, n_train=300)
    b = datasets.load(binarization="stochastic", seed=7, n_train=300)
    grey = datasets.load(seed=7, n_train=300)
    for x in (a.x_train, a.x_val, a.x_test):
        assert x.dtype == np.float32 and set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert abs(a.x_test.mean() - grey.x_test.mean()) < 0.005
    assert (a.x_test[grey.x_test == 0] == 0).all() and (a.x_test[grey.x_test == 1] == 1).all()


# --- to_dataset ----------------------------------------------------------------


def test_to_dataset_batches_keep_last_short_batch():
    x = np.random.default_rng(0).random((250, 784), dtype=np.float32)
    sizes = [len(b) for b in datasets.to_dataset(x, batch_size=100)]
    assert sizes == [100, 100, 50]
    assert [len(b) for b in datasets.to_dataset(x, batch_size=100, drop_remainder=True)] == [100, 100]


def test_to_dataset_shuffle_keeps_pairs_and_reshuffles():
    n = 30
    x = np.eye(n, 784, dtype=np.float32)
    y = np.arange(n)
    ds = datasets.to_dataset(x, y, batch_size=8, seed=1, binarization="threshold")
    epochs = _epochs(ds, 2)
    for epoch in epochs:
        xs = np.concatenate([b[0] for b in epoch])
        ys = np.concatenate([b[1] for b in epoch])
        assert xs.dtype == np.float32 and ys.dtype == np.int64
        np.testing.assert_array_equal(xs[:, :n].argmax(axis=1), ys)  # pairs intact
        np.testing.assert_array_equal(np.sort(ys), y)
    assert not np.array_equal(epochs[0][0][1], epochs[1][0][1])  # reshuffled
    unshuffled = np.concatenate([b[1] for b in datasets.to_dataset(x, y, batch_size=8, shuffle=False)])
    np.testing.assert_array_equal(unshuffled, y)


def test_to_dataset_stochastic_resamples_each_epoch_reproducibly():
    x = np.full((40, 784), 0.5, dtype=np.float32)
    first = _epochs(datasets.to_dataset(x, batch_size=16, seed=3, binarization="stochastic"), 2)
    second = _epochs(datasets.to_dataset(x, batch_size=16, seed=3, binarization="stochastic"), 2)
    other = _epochs(datasets.to_dataset(x, batch_size=16, seed=4, binarization="stochastic"), 1)
    e0, e1 = (np.concatenate(e) for e in first)
    assert set(np.unique(e0)) == {0.0, 1.0} and e0.shape == (40, 784)
    assert abs(e0.mean() - 0.5) < 0.02
    assert not np.array_equal(e0, e1)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(e0, np.concatenate(other[0]))


# --- tfds ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_mock(name, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        s = datasets.load(name, source="tfds", validation_size=10, data_dir=tmp_path, binarization="threshold")
    assert (s.x_train.shape, s.x_val.shape, s.x_test.shape) == ((30, 784), (10, 784), (40, 784))
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert set(np.unique(s.x_train)) <= {0.0, 1.0}
    assert s.y_train.min() >= 0 and s.y_train.max() < 10
    assert s.name == name and s.n_classes == 10


def test_tfds_mock_rejects_non_28x28x1(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match=r"'cifar10' has no 28x28x1.*\(32, 32, 3\)"):
            datasets.load("cifar10", source="tfds", data_dir=tmp_path)


def test_tfds_unknown_name(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="unknown tfds dataset 'no_such_dataset'.*fashion_mnist"):
        datasets.load("no_such_dataset", source="tfds", data_dir=tmp_path)


def test_tfds_unprepared_fails_fast(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as info:
        datasets.load("mnist", source="tfds", data_dir=tmp_path)
    assert time.monotonic() - start < 10
    message = str(info.value)
    for part in ["not downloaded", "offline", 'source="embedded"', "tfds build mnist", "data_dir"]:
        assert part in message


# --- bad inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "fashion_mnist"}, r"unknown dataset 'fashion_mnist'.*source=\"tfds\""),
        ({"binarization": "sigmoid"}, "unknown binarization 'sigmoid'; allowed: none, threshold, stochastic"),
        ({"source": "web"}, "unknown source 'web'; allowed: embedded, tfds"),
        ({"n_train": 0}, r"n_train=0 out of range; allowed: 1 <= n_train <= 50000"),
        ({"n_train": -5}, r"n_train=-5 out of range"),
        ({"n_train": 50_001}, r"n_train=50001 out of range"),
        ({"label_budget": 105}, "label_budget=105 must be a positive multiple of the number of classes"),
        ({"label_budget": 0}, "label_budget=0 must be a positive multiple"),
        ({"label_budget": -10}, "label_budget=-10 must be a positive multiple"),
        ({"label_budget": 60_000}, r"label_budget=60000 needs 6000 examples per class but class \d has only \d+"),
        ({"n_train": 100, "label_budget": 100}, "label_budget=100 needs 10 examples per class"),
        ({"validation_size": -1}, r"validation_size=-1 out of range; allowed: 0 <= validation_size < 60000"),
        ({"validation_size": 60_000}, "validation_size=60000 out of range"),
    ],
)
def test_load_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.load(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size=0 must be an integer >= 1"),
        ({"binarization": "soft"}, "unknown binarization 'soft'"),
        ({"y": np.zeros(3, np.int64)}, "y has 3 labels but x has 4 rows"),
    ],
)
def test_to_dataset_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.to_dataset(np.zeros((4, 784)), **kwargs)


def test_binarize_unknown_mode():
    with pytest.raises(ValueError, match="unknown binarization 'round'; allowed: none, threshold, stochastic"):
        datasets.binarize(np.zeros(3), "round")


def test_to_dataset_stacks_batches_and_keeps_every_row():
    x = np.random.default_rng(0).random((730, 784)).astype(np.float32)
    # 7 full batches: stacks of 7 (the largest divisor <= 8), then the short batch.
    elements = [np.asarray(e) for e in datasets.to_dataset(x, batch_size=100, seed=3, batches_per_element=8)]
    assert [e.shape for e in elements] == [(7, 100, 784), (1, 30, 784)]
    # Known cardinality: Keras knows the epoch length (no "ran out of data" warning).
    assert int(datasets.to_dataset(x, batch_size=100, batches_per_element=8).cardinality()) == 2
    elements = [np.asarray(e) for e in datasets.to_dataset(x[:600], batch_size=100, seed=3,
                                                           batches_per_element=4)]
    assert [e.shape for e in elements] == [(3, 100, 784), (3, 100, 784)]
    elements = [np.asarray(e) for e in datasets.to_dataset(x, batch_size=100, seed=3, batches_per_element=3)]
    assert [e.shape for e in elements] == [(100, 784)] * 7 + [(30, 784)]  # 7 is prime: unstacked
    rows = np.concatenate([e.reshape(-1, 784) for e in elements])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), np.sort(x[:, 0]))
    flat = np.concatenate([np.asarray(b) for b in datasets.to_dataset(x, batch_size=100, seed=3)])
    np.testing.assert_array_equal(rows, flat)  # same order as unstacked batches
    with pytest.raises(ValueError, match="batches_per_element"):
        datasets.to_dataset(x, np.zeros(730, np.int64), batches_per_element=2)


def test_epoch_datasets_batches_are_pinned():
    """The exact batches of seed 3 (row ids and stochastic draws), as every committed
    result was trained on them: a change to shuffling, stacking, binarization or the
    per-epoch seed changes these and invalidates resumed runs and cached layers.
    tf.data's seeded ops also read TensorFlow's global seed (the package sets it, from
    the run's seed, before it trains), so the test sets one."""
    import tensorflow as tf

    tf.random.set_seed(1234)
    x = np.tile((np.arange(250, dtype=np.float32) / 250)[:, None], (1, 6))  # row i holds i / 250
    make = datasets.epoch_datasets(x, batch_size=20, seed=3, binarization="stochastic",
                                   batches_per_element=4)
    for epoch, (first, last) in enumerate([(238, 32), (249, 18)]):
        elements = [np.asarray(e) for e in make(epoch)]
        assert [e.shape for e in elements] == [(4, 20, 6)] * 3 + [(1, 10, 6)]
        assert (int(elements[0].sum()), int(elements[-1].sum())) == (first, last)
    plain = datasets.epoch_datasets(x, np.arange(250) % 10, batch_size=20, seed=3)
    for epoch, rows in enumerate([[50, 80, 10, 185, 233, 135], [114, 182, 199, 92, 115, 113]]):
        xb, yb = next(iter(plain(epoch)))
        ids = np.rint(np.asarray(xb)[:, 0] * 250).astype(int)
        assert ids[:6].tolist() == rows
        np.testing.assert_array_equal(np.asarray(yb), ids % 10)  # pairs stay together


def test_pipelines_are_not_autotuned():
    """Tearing down an autotuned iterator cost ~2.4 s after every RBM epoch (TF 2.21, 2
    cores), about 40% of a CD-1 epoch: every pipeline built here turns autotuning off."""
    x = np.zeros((40, 6), np.float32)
    for ds in (datasets.to_dataset(x, batch_size=10, batches_per_element=2),
               datasets.to_dataset(x, np.zeros(40, np.int64), batch_size=10),
               datasets.epoch_datasets(x, batch_size=10, seed=0, binarization="stochastic")(1)):
        assert ds.options().autotune.enabled is False
