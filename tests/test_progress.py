"""Progress bars over long in-graph loops: the loop runs in chunks, which must cover every
step exactly once and leave every result bit-identical to the unchunked run."""

import numpy as np
import pytest

from dbn import progress


@pytest.mark.parametrize("total", [1, 2, 49, 50, 51, 999, 1000])
def test_chunks_cover_every_step_once(total):
    for verbose in (0, 1, 2):
        parts = progress.chunks(total, verbose)
        steps = [k for a, b in parts for k in range(a, b)]
        assert steps == list(range(total))
        assert len(parts) == (1 if not verbose else min(progress.CHUNKS, total))


def test_ais_with_progress_is_bit_identical(capsys):
    from dbn.estimation import ais

    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.3, (30, 12)).astype("float32")
    b, c = rng.normal(0, 1, 30).astype("float32"), rng.normal(0, 1, 12).astype("float32")
    data = (rng.random((100, 30)) < 0.3).astype("float32")
    betas = ais.make_betas([(1.0, 1e-2)])  # 100 temperatures: 50 chunks of 2
    quiet = ais.ais_log_partition(W, b, c, base_data=data, betas=betas, n_runs=20, seed=3)
    shown = ais.ais_log_partition(W, b, c, base_data=data, betas=betas, n_runs=20, seed=3, verbose=2)
    assert shown.log_z == quiet.log_z and shown.log_z_std == quiet.log_z_std
    assert "AIS: 100 temperatures x 20 runs" in capsys.readouterr().err


@pytest.mark.parametrize("labels", [None, [0, 1, 2, 0]])
def test_sampling_with_progress_is_bit_identical(capsys, labels):
    from dbn import RBM

    rbm = RBM(8, seed=1, n_labels=0 if labels is None else 3)
    rbm.build((None, 20))
    rbm.W.assign(np.random.default_rng(0).normal(0, 1.0, (20, 8)).astype("float32"))
    quiet = rbm.sample(4, 120, seed=5, labels=labels)
    shown = rbm.sample(4, 120, seed=5, labels=labels, verbose=2)
    np.testing.assert_array_equal(shown, quiet)
    assert "Gibbs sampling: 120 steps x 4 chains" in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [-1, 3, True, 1.5, "1"])
def test_bad_verbose_is_named(verbose):
    from dbn import RBM
    from dbn.estimation import ais

    rbm = RBM(3, seed=0)
    rbm.build((None, 5))
    with pytest.raises(ValueError, match="verbose"):
        rbm.sample(2, 3, verbose=verbose)
    with pytest.raises(ValueError, match="verbose"):
        ais.ais_log_partition(np.zeros((5, 3), "float32"), np.zeros(5, "float32"),
                              np.zeros(3, "float32"), n_runs=2, verbose=verbose)
