"""Tests of dbn.validation: every checker accepts what its docstring allows (numpy
scalars normalised to Python ones) and refuses the rest with a ValueError naming the
parameter, the value and what is allowed."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from dbn import validation as check

NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------------- integers
@pytest.mark.parametrize("value", [1, 7, np.int64(5), np.int32(3), np.uint8(2), 10**12])
def test_integer_accepts_python_and_numpy_integers(value):
    out = check.check_int("n", value, low=1)
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 2.5, 2.0, np.float64(3.0), "3",
                                   None, NAN, [1], np.array([1])])
def test_integer_refuses_bools_floats_strings(value):
    # "(not a bool)" only where a bool was given: True would pass as 1 in Python.
    suffix = r" \(not a bool\)" if isinstance(value, (bool, np.bool_)) else ""
    with pytest.raises(ValueError, match=rf"^n=.* must be an integer >= 1{suffix}$"):
        check.check_int("n", value, low=1)


@pytest.mark.parametrize("value, low, high, ok", [
    (0, 0, None, True), (-1, 0, None, False), (5, 1, 5, True), (6, 1, 5, False),
    (-3, None, None, True), (0, 1, None, False)])
def test_integer_range_is_closed(value, low, high, ok):
    if ok:
        assert check.check_int("n", value, low=low, high=high) == value
    else:
        with pytest.raises(ValueError, match=f"n={value} must be an integer"):
            check.check_int("n", value, low=low, high=high)


def test_integer_optional_and_message_names_the_range():
    assert check.check_int("n_train", None, low=1, optional=True) is None
    with pytest.raises(ValueError, match=re.escape("n_train=2.5 must be an integer >= 1 or None") + "$"):
        check.check_int("n_train", 2.5, low=1, optional=True)
    with pytest.raises(ValueError, match=re.escape("k=9 must be an integer in [0, 3]") + "$"):
        check.check_int("k", 9, low=0, high=3)
    with pytest.raises(ValueError, match="n=None"):
        check.check_int("n", None)


def test_seed():
    assert check.check_seed("seed", np.int64(7)) == 7
    assert check.check_seed("seed", None, optional=True) is None
    for bad in (-1, 2**63, 1.0, True, "0"):
        with pytest.raises(ValueError, match=r"seed=.* must be an integer in \[0, 9223372036854775807\]"):
            check.check_seed("seed", bad)


# --------------------------------------------------------------------------- reals
@pytest.mark.parametrize("value", [0.1, 1, np.float32(0.25), np.float64(0.5), np.int64(1)])
def test_real_accepts_ints_and_numpy_numbers_as_python_numbers(value):
    out = check.check_float("lr", value, low=0.0, low_open=True)
    assert out == value and type(out) in (int, float)
    assert type(out) is (int if isinstance(value, (int, np.integer)) else float)


def test_real_keeps_python_values_identical():
    """Configs store what they were given: a valid config's to_dict() is unchanged."""
    for value in (0.05, 1, 0.0):
        assert check.check_float("x", value, low=0.0) is value


@pytest.mark.parametrize("value", [NAN, INF, -INF, np.float64("nan"), np.float32("inf"), True,
                                   np.bool_(False), "0.1", None, [0.1], 1j])
def test_real_refuses_non_finite_bools_and_strings(value):
    suffix = r" \(not a bool\)" if isinstance(value, (bool, np.bool_)) else ""
    with pytest.raises(ValueError, match=rf"^lr=.* must be a finite number > 0{suffix}$"):
        check.check_float("lr", value, low=0.0, low_open=True)


@pytest.mark.parametrize("value, kwargs, ok", [
    (0.0, dict(low=0.0), True), (0.0, dict(low=0.0, low_open=True), False),
    (1.0, dict(high=1.0), True), (1.0, dict(high=1.0, high_open=True), False),
    (0.5, dict(low=0.0, high=1.0, low_open=True, high_open=True), True),
    (-1e-9, dict(low=0.0), False), (1 + 1e-9, dict(low=0.0, high=1.0), False)])
def test_real_open_and_closed_bounds(value, kwargs, ok):
    if ok:
        assert check.check_float("p", value, **kwargs) == value
    else:
        with pytest.raises(ValueError, match=r"p=.* must be a finite number"):
            check.check_float("p", value, **kwargs)


def test_real_messages_describe_intervals():
    with pytest.raises(ValueError, match=re.escape("sparsity_decay=5.0 must be a finite number in [0, 1)")):
        check.check_float("sparsity_decay", 5.0, low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match=re.escape("t=1.5 must be a finite number in (0, 1) or None")):
        check.check_float("t", 1.5, low=0.0, high=1.0, low_open=True, high_open=True, optional=True)
    with pytest.raises(ValueError, match=re.escape("x=nan must be a finite number")):
        check.check_float("x", NAN)
    assert check.check_float("t", None, optional=True) is None


# --------------------------------------------------------------------------- bool, choice
def test_bool():
    assert check.check_bool("flag", True) is True
    assert check.check_bool("flag", np.bool_(False)) is False
    for bad in (0, 1, "True", None, 1.0):
        with pytest.raises(ValueError, match=r"flag=.* must be True or False"):
            check.check_bool("flag", bad)


def test_choice():
    assert check.check_choice("mode", "a", ("a", "b")) == "a"
    for bad in ("c", None, 1, b"a", ["a"]):
        with pytest.raises(ValueError, match=r"mode=.* must be one of 'a', 'b'"):
            check.check_choice("mode", bad, ("a", "b"))


def test_integer_sequence():
    seq = check.IntegerSequence(1)
    assert seq("k", (3, np.int64(6))) == (3, 6) and type(seq("k", (3, np.int64(6)))[1]) is int
    assert seq("k", [1, 2]) == [1, 2]
    assert seq("k", np.array([3, 6])) == (3, 6)
    for bad in ((), [], (3, 0), (3, 2.0), (True,), "36", 3, None):
        with pytest.raises(ValueError, match="k=.* must be a non-empty list or tuple of integers >= 1"):
            seq("k", bad)


def test_suffix():
    assert check.check_suffix("filepath", "a/b.keras", (".keras",)) == "a/b.keras"
    with pytest.raises(ValueError, match=r"filepath='x.h5' must be a path ending in .keras"):
        check.check_suffix("filepath", "x.h5", (".keras",))
    with pytest.raises(ValueError, match="filepath=3"):
        check.check_suffix("filepath", 3, (".keras",))


# --------------------------------------------------------------------------- declarative
@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 2
    rate: float = 0.5
    flag: bool = False
    name: str = "a"
    CONSTRAINTS = {"n": check.Integer(1), "rate": check.Real(0.0, 1.0),
                   "flag": check.Boolean(), "name": check.Choice(("a", "b"))}

    def __post_init__(self):
        check.validate_fields(self, self.CONSTRAINTS)


def test_validate_fields_normalises_numpy_scalars_on_frozen_dataclasses():
    c = Config(n=np.int64(3), rate=np.float32(0.5), flag=np.bool_(True))
    assert dataclasses.asdict(c) == {"n": 3, "rate": 0.5, "flag": True, "name": "a"}
    assert [type(v) for v in dataclasses.asdict(c).values()] == [int, float, bool, str]
    json.dumps(dataclasses.asdict(c))  # serialisable
    assert dataclasses.asdict(Config()) == {"n": 2, "rate": 0.5, "flag": False, "name": "a"}


@pytest.mark.parametrize("field, value", [("n", 0), ("n", True), ("rate", NAN), ("rate", 2.0),
                                          ("flag", 1), ("name", "c")])
def test_validate_fields_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}="):
        Config(**{field: value})


# --------------------------------------------------------------------------- arrays
def test_matrix_accepts_and_converts_without_copying_float32():
    x = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    assert check.check_matrix("x", x) is x
    out = check.check_matrix("x", [[0, 1], [1, 0]], binary=True)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    assert check.check_matrix("x", np.zeros((0, 4))).shape == (0, 4)
    assert check.check_matrix("x", np.array([[True, False]])).tolist() == [[1.0, 0.0]]
    assert check.check_matrix("w", [[-5.0, 7.0]], low=None, high=None).shape == (1, 2)


@pytest.mark.parametrize("x, kwargs, match", [
    (np.zeros(3), {}, r"x has shape \(3,\); allowed: a 2-D array"),
    (np.zeros((2, 3, 4)), {}, r"x has shape \(2, 3, 4\); allowed: a 2-D array"),
    (np.zeros((2, 3)), dict(n_columns=4), r"x has 3 features; the model was built for 4"),
    (np.zeros((0, 3)), dict(allow_empty=False), r"x is empty \(shape \(0, 3\)\)"),
    (np.array([[0.5, np.nan]]), {}, r"x contains NaN or inf; allowed: finite values in \[0, 1\]"),
    (np.array([[0.5, np.inf]]), dict(low=None, high=None), r"x contains NaN or inf"),
    (np.array([[0.0, 255.0]]), {}, r"x has values in \[0, 255\]; allowed: finite values in \[0, 1\]"),
    (np.array([[-0.1, 0.5]]), {}, r"x has values in \[-0.1, 0.5\]"),
    (np.array([[0.0, 0.5]]), dict(binary=True), r"x is not binary .*allowed: only 0 and 1"),
    (np.array([["a", "b"]]), {}, r"x has dtype <U1; allowed: real numbers"),
    (np.array([[1j]]), {}, r"x has dtype complex128"),
    ([[0.0, 1.0], [0.0]], {}, r"x is not an array of numbers"),
    ("abc", {}, r"x='abc' must be an array"),
    (None, {}, r"x=None must be an array"),
])
def test_matrix_refusals(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check.check_matrix("x", x, **kwargs)


def test_values_any_shape():
    assert check.check_values("x", np.zeros((2, 3, 4))).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="NaN"):
        check.check_values("x", np.array([np.nan]))


def test_labels_accept_integer_arrays_as_int64():
    y = check.check_labels("y", np.array([0, 9, 3], np.uint8), n_classes=10, n=3)
    assert y.dtype == np.int64 and y.tolist() == [0, 9, 3]
    assert check.check_labels("y", [], n_classes=10, n=0).shape == (0,)  # empty: any dtype
    assert check.check_labels("y", [5, 100]).tolist() == [5, 100]  # no n_classes: only >= 0


@pytest.mark.parametrize("y, kwargs, match", [
    (np.array([0, 10]), dict(n_classes=10), r"y has labels in \[0, 10\] \(1 out of range, e.g. 10\); allowed: 0..9"),
    (np.array([-1, 3]), dict(n_classes=10), r"y has labels in \[-1, 3\].*allowed: 0..9"),
    (np.array([-1, 3]), {}, r"allowed: >= 0"),
    (np.array([0.0, 1.0]), {}, r"y has dtype float64; allowed: integer class labels"),
    (np.array([0.5, 1.7]), {}, r"y has dtype float64"),
    (np.array([True, False]), {}, r"y has dtype bool"),
    (np.array(["1"]), {}, r"y has dtype <U1"),
    (np.zeros((3, 1), np.int64), {}, r"y has shape \(3, 1\); allowed: a 1-D array"),
    (np.zeros(3, np.int64), dict(n=4), r"y has 3 labels but x has 4 rows"),
])
def test_label_refusals(y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check.check_labels("y", y, **kwargs)


def test_same_length():
    assert check.check_same_length(x=np.zeros(3), y=[1, 2, 3]) == 3
    with pytest.raises(ValueError, match="x has 3, y has 2"):
        check.check_same_length(x=np.zeros(3), y=[1, 2])


def test_whole_mnist_sized_check_is_fast():
    """The checks are vectorised: a 60,000 x 784 float32 array in well under a second."""
    import time

    x = (np.random.default_rng(0).random((60_000, 784)) < 0.5).astype(np.float32)
    t0 = time.perf_counter()
    check.check_matrix("x", x, n_columns=784, binary=True)
    assert time.perf_counter() - t0 < 2.0  # measured ~0.1 s; generous for a loaded machine
    assert math.isfinite(float(x.sum()))
