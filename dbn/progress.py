"""Progress of long in-graph loops (AIS temperatures, Gibbs chains): the loop runs in
chunks, each one compiled ``tf.while_loop`` over its steps, and a Keras progress bar
advances between chunks.  Chunking never changes a result: the loops' random numbers are
keyed by step (AIS) or drawn from a counter that carries over (Gibbs chains)."""

from __future__ import annotations

import contextlib
import sys

CHUNKS = 50  # progress updates per loop when verbose (one compiled call each)


def chunks(total, verbose):
    """``[(start, stop), ...]`` covering ``range(total)``: one chunk when not ``verbose``
    (one compiled call, as without progress), else up to ``CHUNKS`` near-equal ones."""
    n = min(CHUNKS, total) if verbose else 1
    bounds = [round(i * total / n) for i in range(n + 1)] if total else [0, 0]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class Bar:
    """A Keras progress bar over ``total`` steps named ``what``, on stderr (stdout stays
    the commands' results); nothing when not ``verbose``."""

    def __init__(self, total, verbose, what):
        self._bar = None
        if verbose:
            import keras

            print(what, file=sys.stderr, flush=True)
            self._bar = keras.utils.Progbar(total, verbose=1 if verbose == 1 else 2, unit_name="step")

    def update(self, done):
        if self._bar is not None:
            with contextlib.redirect_stdout(sys.stderr):
                self._bar.update(done)
