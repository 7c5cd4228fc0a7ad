"""Argument checks shared by every public function and config of ``dbn``.

Every check raises :class:`ValueError` *before any work is done*, with a message that
names the parameter, shows the value given (its ``repr``, or the shape, dtype and
range of an array) and says what is allowed, e.g.::

    n_train=2.5 must be an integer >= 1
    n_train=True must be an integer >= 1 (not a bool)
    x has values in [0, 255]; allowed: finite values in [0, 1]

Nothing is ever fixed silently: no clipping, no rounding, no truncation of floats to
integers.  What a check *does* change is the container: numpy scalars become Python
``int``/``float``/``bool`` (so that configs stay JSON-serialisable and cache keys stay
stable) and arrays become float32 (data) or int64 (labels) arrays.

Scalar checks
    :func:`check_int`, :func:`check_float`, :func:`check_bool`, :func:`check_choice`,
    :func:`check_seed`, :func:`check_suffix`.
Array checks
    :func:`check_matrix` (2-D float data, finite, in a range, optionally binary),
    :func:`check_labels` (1-D integer class labels), :func:`check_same_length`.
Declarative checks
    The constraint classes :class:`Integer`, :class:`Real`, :class:`Boolean`,
    :class:`Choice` and :class:`IntegerSequence` describe one parameter each; a table
    ``{field: constraint}`` and :func:`validate_fields` check a whole config (in the
    style of scikit-learn's ``_parameter_constraints``).

Decisions
    * ``bool`` (and ``numpy.bool_``) is never an integer or a number here:
      ``n_train=True`` is refused.  Numpy integers and floats are accepted.
    * Integer-valued *float* label arrays (``[0., 3., 9.]``) are refused: labels must
      have an integer dtype (``y.astype(np.int64)`` is the explicit conversion).  An
      empty array counts as integer whatever its dtype (``np.asarray([])`` is float).
    * Ints are accepted where a float is expected (``learning_rate=1``) and kept as
      given (a config's ``to_dict()`` is unchanged).

This module depends on numpy only, and checks whole arrays vectorised (a full MNIST
training set takes a few tens of milliseconds).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from pathlib import Path

import numpy as np

__all__ = [
    "Boolean", "Choice", "Integer", "IntegerSequence", "Real", "check_bool", "check_choice",
    "check_float", "check_int", "check_labels", "check_matrix", "check_same_length",
    "check_seed", "check_suffix", "check_values", "validate_fields",
]


def _fail(name, value, allowed):
    raise ValueError(f"{name}={value!r} must be {allowed}")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return (isinstance(value, (numbers.Real, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def _not_bool(value):
    """" (not a bool)" for a bool given where a number belongs (True is 1 to Python)."""
    return " (not a bool)" if isinstance(value, (bool, np.bool_)) else ""


def _python(value):
    """A numpy scalar as the Python scalar of the same kind; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _number(v):
    return str(v) if isinstance(v, int) else f"{v:g}"


def _interval(low, high, low_open, high_open):
    if low is not None and high is not None:
        return (f"in {'(' if low_open else '['}{_number(low)}, {_number(high)}"
                f"{')' if high_open else ']'}")
    if low is not None:
        return f"{'>' if low_open else '>='} {_number(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_number(high)}"
    return ""


# --------------------------------------------------------------------------- constraints
@dataclasses.dataclass(frozen=True)
class Integer:
    """An integer (Python or numpy, never a bool) in ``[low, high]`` (None: unbounded);
    ``optional`` also allows None.  Returns a Python ``int``."""

    low: int | None = None
    high: int | None = None
    optional: bool = False

    def describe(self):
        text = " ".join(filter(None, ["an integer", _interval(self.low, self.high, False, False)]))
        return text + (" or None" if self.optional else "")

    def __call__(self, name, value):
        if value is None and self.optional:
            return None
        if (not _is_int(value) or (self.low is not None and value < self.low)
                or (self.high is not None and value > self.high)):
            _fail(name, value, self.describe() + _not_bool(value))
        return int(value)


@dataclasses.dataclass(frozen=True)
class Real:
    """A finite real number (int or float, Python or numpy, never a bool, NaN or inf)
    between ``low`` and ``high`` (each bound closed unless ``low_open``/``high_open``);
    ``optional`` also allows None.  A numpy scalar becomes the Python scalar of the
    same kind (an int stays an int)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def describe(self):
        bounds = _interval(self.low, self.high, self.low_open, self.high_open)
        text = "a finite number" + (f" {bounds}" if bounds else "")
        return text + (" or None" if self.optional else "")

    def __call__(self, name, value):
        if value is None and self.optional:
            return None
        if not _is_real(value) or not math.isfinite(value):
            _fail(name, value, self.describe() + _not_bool(value))
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            _fail(name, value, self.describe())
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            _fail(name, value, self.describe())
        return _python(value)


@dataclasses.dataclass(frozen=True)
class Boolean:
    """``True`` or ``False`` (``numpy.bool_`` too); not 0/1, not strings.  Returns a
    Python ``bool``."""

    def describe(self):
        return "True or False"

    def __call__(self, name, value):
        if not isinstance(value, (bool, np.bool_)):
            _fail(name, value, self.describe())
        return bool(value)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``options`` (compared with ``==``, strings only match strings)."""

    options: tuple

    def describe(self):
        return "one of " + ", ".join(repr(o) for o in self.options)

    def __call__(self, name, value):
        if not any(type(value) is type(o) and value == o for o in self.options):
            _fail(name, value, self.describe())
        return value


@dataclasses.dataclass(frozen=True)
class IntegerSequence:
    """A non-empty list or tuple of integers >= ``low`` (a 1-D numpy integer array
    becomes a tuple).  Returns a container of the same type holding Python ints."""

    low: int = 1

    def describe(self):
        return f"a non-empty list or tuple of integers >= {self.low}"

    def __call__(self, name, value):
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = tuple(value.tolist()) if value.dtype.kind in "iu" else value
        if not isinstance(value, (list, tuple)) or not value:
            _fail(name, value, self.describe())
        for item in value:
            if not _is_int(item) or item < self.low:
                _fail(name, value, self.describe())
        return type(value)(int(item) for item in value)


def validate_fields(obj, constraints):
    """Check the attributes of ``obj`` named in ``constraints`` (``{name: constraint}``)
    in table order, and store the normalised values back (works on frozen dataclasses).

    Call it first thing in a dataclass's ``__post_init__``; cross-field rules follow it.
    """
    for name, constraint in constraints.items():
        value = getattr(obj, name)
        checked = constraint(name, value)
        if checked is not value:
            object.__setattr__(obj, name, checked)


# --------------------------------------------------------------------------- scalar functions
def check_int(name, value, *, low=None, high=None, optional=False):
    """``value`` as a Python int; see :class:`Integer`."""
    return Integer(low, high, optional)(name, value)


def check_float(name, value, *, low=None, high=None, low_open=False, high_open=False,
                optional=False):
    """``value`` as a Python number; see :class:`Real`."""
    return Real(low, high, low_open, high_open, optional)(name, value)


def check_bool(name, value):
    """``value`` as a Python bool; see :class:`Boolean`."""
    return Boolean()(name, value)


def check_choice(name, value, options):
    """``value`` if it is one of ``options``; see :class:`Choice`."""
    return Choice(tuple(options))(name, value)


def check_seed(name, value, *, optional=False):
    """A random seed: an integer in ``[0, 2**63 - 1]`` (numpy's and TensorFlow's common
    range), or None if ``optional``.  Returns a Python int."""
    return Integer(0, 2**63 - 1, optional)(name, value)


def check_rates(name, rates):
    """A non-empty list of distinct finite rates > 0 (a learning-rate grid), as Python
    floats."""
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__iter__"):
        _fail(name, rates, "a non-empty list of rates > 0")
    rates = list(rates)
    values = [float(check_float(f"{name}[{i}]", lr, low=0.0, low_open=True)) for i, lr in enumerate(rates)]
    if not values or len(set(values)) != len(values):
        _fail(name, rates, "a non-empty list of distinct rates > 0")
    return values


def check_suffix(name, path, suffixes):
    """``path`` (str or os.PathLike) if its file name ends with one of ``suffixes``
    (e.g. ``(".keras",)`` or ``(".weights.h5",)``)."""
    if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
        _fail(name, path, f"a path ending in {' or '.join(suffixes)}")
    if not str(Path(path).name).endswith(tuple(suffixes)):
        _fail(name, str(path), f"a path ending in {' or '.join(suffixes)}")
    return path


# --------------------------------------------------------------------------- arrays
def _as_array(name, x):
    if isinstance(x, (str, bytes)) or x is None:
        _fail(name, x, "an array")
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged lists, ...
        raise ValueError(f"{name} is not an array of numbers ({err})") from None
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {x.dtype}; allowed: real numbers (bool, int or float)")
    return x


def describe_array(x):
    """``shape (n, d), dtype float32, values in [lo, hi]`` for messages."""
    text = f"shape {x.shape}, dtype {x.dtype}"
    if x.size:
        text += f", values in [{x.min():g}, {x.max():g}]"
    return text


def check_values(name, x, *, low=0.0, high=1.0, binary=False):
    """An array of any shape as float32 whose values are finite, in ``[low, high]``
    (None: unbounded) and, if ``binary``, exactly 0 or 1; checked whole, vectorised."""
    return _check_values(name, _as_array(name, x), low=low, high=high, binary=binary)


def _check_values(name, x, *, low, high, binary):
    x = np.asarray(x, dtype=np.float32)
    if x.size:
        lo, hi = x.min(), x.max()  # NaN propagates through min/max: one pass each
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or inf; allowed: finite values "
                             f"{_interval(low, high, False, False)}".rstrip())
        if (low is not None and lo < low) or (high is not None and hi > high):
            raise ValueError(f"{name} has values in [{lo:g}, {hi:g}]; allowed: finite values "
                             f"{_interval(low, high, False, False)}")
        if binary and not np.all((x == 0) | (x == 1)):
            raise ValueError(f"{name} is not binary ({describe_array(x)}); allowed: only 0 and 1")
    return x


def check_matrix(name, x, *, n_columns=None, low=0.0, high=1.0, binary=False,
                 allow_empty=True, columns_what="the model was built for"):
    """A 2-D array of data as float32, checked whole.

    Parameters
    ----------
    name : str
        Parameter name for the message.
    x : array_like (n, d)
        Bool, integer or float values (strings, objects and complex are refused).
    n_columns : int, optional
        Required number of columns ``d``.
    low, high : float or None, default 0 and 1
        Closed range of the values (None: unbounded).  Values must be finite.
    binary : bool, default False
        Require every value to be exactly 0 or 1.
    allow_empty : bool, default True
        Whether ``n == 0`` is allowed.
    columns_what : str
        Completes "x has d columns; ..." in the message (what fixed ``n_columns``).

    Returns
    -------
    numpy.ndarray, float32, shape (n, d)
        ``x`` itself when it already is float32 (no copy).
    """
    x = _as_array(name, x)
    if x.ndim != 2:
        raise ValueError(f"{name} has shape {x.shape}; allowed: a 2-D array (n, features)"
                         + (f" with n_features={n_columns}" if n_columns is not None else ""))
    if n_columns is not None and x.shape[1] != n_columns:
        raise ValueError(f"{name} has {x.shape[1]} features; {columns_what} {n_columns}")
    if not allow_empty and x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); allowed: at least one row")
    return _check_values(name, x, low=low, high=high, binary=binary)


def check_labels(name, y, *, n_classes=None, n=None, length_of="x"):
    """Class labels as an int64 array (n,).

    Parameters
    ----------
    y : array_like of int, shape (n,)
        Integer dtype (float arrays are refused even when whole-valued: convert them
        explicitly with ``y.astype(np.int64)``; an empty array may have any dtype).
    n_classes : int, optional
        Labels must be in ``0 .. n_classes - 1`` (else only >= 0).
    n : int, optional
        Required length (the number of rows of ``length_of``).
    """
    y = _as_array(name, y)
    if y.ndim != 1:
        raise ValueError(f"{name} has shape {y.shape}; allowed: a 1-D array of class labels")
    if n is not None and len(y) != n:
        raise ValueError(f"{name} has {len(y)} labels but {length_of} has {n} rows; "
                         "allowed: one label per row")
    if y.size and y.dtype.kind not in "iu":
        raise ValueError(f"{name} has dtype {y.dtype}; allowed: integer class labels "
                         "(convert whole-valued floats explicitly with y.astype(np.int64))")
    if y.size:
        lo, hi = y.min(), y.max()
        top = n_classes - 1 if n_classes is not None else None
        if lo < 0 or (top is not None and hi > top):
            bad = y[(y < 0) | (y > top)] if top is not None else y[y < 0]
            allowed = f"0..{top}" if top is not None else ">= 0"
            raise ValueError(f"{name} has labels in [{lo}, {hi}] ({len(bad)} out of range, "
                             f"e.g. {bad[0]}); allowed: {allowed}")
    return y.astype(np.int64, copy=False)


def check_same_length(**arrays):
    """All keyword arrays have the same number of rows; returns it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("these must have the same number of rows: "
                         + ", ".join(f"{name} has {n}" for name, n in lengths.items()))
    return next(iter(lengths.values()), 0)
