"""tf.distribute: RBM pretraining, the up-down and fine-tuning on 2 replicas give the
updates of one device (exactly where the negative phase is deterministic, in expectation
where it samples), with independent random streams per replica and the global chains
saved; and a two-worker MultiWorkerMirroredStrategy cluster on localhost trains in step.

The multi-device runs need TensorFlow set up before it starts (logical CPU devices, a
cluster), so they run in their own processes (tests/distributed_checks.py); this module
asserts on what they measured."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbn import distribute

CHECKS = Path(__file__).with_name("distributed_checks.py")
TIMEOUT = 600  # seconds: a few tiny fits per process (about 30 s on 2 cores)

# float32 updates computed in another order: every gradient entry is a sum of at most
# 2 x 16 terms of magnitude <= 1, divided by 16 (error <= 32 * 2^-24 / 16 * 16 ~ 2e-6 of
# it), and a run makes 6 updates at learning rate <= 0.5 with momentum 0.5: the weights
# of 1 device and 2 replicas may differ by about 6 * 0.5 * 2 * 2e-6 ~ 1e-5 at most.
EXACT_ATOL = 2e-5
# Expected values from 400 draws each: a difference of means over its standard error is
# ~N(0, 1) per entry; 5 sigma over ~100 entries fails by chance with probability ~6e-5.
Z_LIMIT = 5.0


def _env():
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "result.json"
    proc = subprocess.run([sys.executable, str(CHECKS), "mirrored", str(out)], env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Two worker processes of one cluster on localhost (loopback only), bounded in time."""
    tmp = tmp_path_factory.mktemp("workers")
    cluster = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, str(CHECKS), "worker", str(tmp / f"worker{index}.json")],
            env={**_env(), "TF_CONFIG": json.dumps(config)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        errors = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, err in zip(procs, errors):
        assert p.returncode == 0, err[-3000:]
    return [json.loads((tmp / f"worker{i}.json").read_text()) for i in range(2)]


# --------------------------------------------------------------------------- mirrored
def test_two_replicas(mirrored):
    assert mirrored["replicas"] == 2


@pytest.mark.parametrize("case", ["cd1_decay_sparsity", "cd3", "pcd", "pcd_fast"])
def test_rbm_updates_are_those_of_one_device(mirrored, case):
    """Weights, biases, PCD chains, fast weights, mean activation after 6 updates of a
    model whose negative phase is deterministic (saturated visible units).  Fails if a
    replica divides by its own rows instead of the global batch's (every update doubled)
    or if weight decay is added once per replica."""
    assert mirrored[f"exact_{case}"] < EXACT_ATOL


def test_an_empty_replica_share_changes_nothing(mirrored):
    """A last batch of one row leaves one replica without rows: the update is still one
    device's and the logged reconstruction error stays finite (weighed by rows)."""
    assert mirrored["exact_empty_share"] < EXACT_ATOL
    assert mirrored["empty_share_error_finite"]


def test_every_draw_of_every_replica_has_its_own_key(mirrored):
    """Folding the replica into a key must not map replica r's draw j onto replica 0's
    draw j + r (a shared counter plus an offset would)."""
    for name in ("rbm_keys", "up_down_keys"):
        drawn, distinct = mirrored[name]
        assert drawn >= 8 and distinct == drawn, name


def test_sampling_is_the_same_inside_and_outside_the_scope(mirrored):
    assert mirrored["sample_scope_diff"] == 0.0


def test_replicas_draw_independent_random_streams(mirrored):
    """Identical chains on both replicas must not stay identical (one shared stream
    would move them in lockstep)."""
    assert mirrored["chains_moved"]
    assert not mirrored["replica_chains_identical"]


def test_expected_cd_gradient_is_that_of_one_device(mirrored):
    assert mirrored["cd_gradient_scale"] > 0.05  # a real gradient, not zeros on both sides
    assert mirrored["cd_gradient_z"] < Z_LIMIT


def test_expected_up_down_statistics_are_those_of_one_device(mirrored):
    assert mirrored["up_down_z"] < Z_LIMIT


def test_fine_tuning_is_exactly_that_of_one_device(mirrored):
    assert mirrored["exact_finetune"] < EXACT_ATOL


def test_chains_and_stream_saved_on_two_replicas_load_on_one(mirrored):
    assert mirrored["restored_diff"] == 0.0
    assert mirrored["restored_sampler"] == mirrored["saved_sampler"]
    assert mirrored["saved_sampler"][1] > 0  # the stream advanced and came back


def test_a_run_under_a_strategy_has_its_own_checkpoint(mirrored):
    """Other random streams, other work: pretraining under the strategy must not reuse
    the layer one device trained (nor the reverse), and does reuse its own."""
    assert mirrored["layer_dirs"] == 2
    assert mirrored["layer_specs"] == sorted(
        ["null", '{"strategy": "MirroredStrategy", "replicas": 2}'])


def test_a_dbn_saved_under_a_strategy_loads_without_one(mirrored):
    assert mirrored["saved_dbn_diff"] == 0.0


def test_a_model_used_inside_another_strategys_scope_is_named(mirrored):
    assert "made under _DefaultDistributionStrategy" in mirrored["nested_error"]
    assert "MirroredStrategy" in mirrored["nested_error"]


def test_what_cannot_be_split_is_refused_before_any_work(mirrored):
    errors = mirrored["errors"]
    assert "n_chains=7" in errors["odd_chains"] and "2 replicas" in errors["odd_chains"]
    assert "stacked batches" in errors["stacked"] and "2 replicas" in errors["stacked"]
    assert not errors["odd_chains_built"] and not errors["stacked_built"]


# --------------------------------------------------------------------------- multi-worker
def test_workers_train_in_step_and_match_one_device(workers):
    assert [w["index"] for w in workers] == [0, 1]
    assert all(w["replicas"] == 2 for w in workers)
    assert workers[0]["rbm_digest"] == workers[1]["rbm_digest"]
    assert workers[0]["up_down_digest"] == workers[1]["up_down_digest"]
    assert all(w["exact_rbm"] < EXACT_ATOL for w in workers)


def test_fine_tuning_on_a_cluster_is_that_of_one_device(workers):
    """Keras' fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585); the
    package's own loop of Keras' train_step does not, and gives one device's weights."""
    assert workers[0]["finetune_digest"] == workers[1]["finetune_digest"]
    assert all(w["exact_finetune"] < EXACT_ATOL for w in workers)


# --------------------------------------------------------------------------- in process
def test_helpers_are_the_identity_on_one_device():
    import tensorflow as tf

    x = tf.constant(np.arange(6.0).reshape(3, 2))
    assert distribute.num_replicas() == 1
    assert distribute.global_sum(x) is x and distribute.all_gather(x) is x
    assert distribute.shard(x) is x
    key = tf.constant([1, 2], tf.int64)
    assert distribute.replica_key(key) is key


@pytest.mark.parametrize("name", ["", "Mirrored", "tpu", None, 1])
def test_unknown_strategy_is_refused(name):
    with pytest.raises(ValueError, match="must be one of default, mirrored, multiworker"):
        distribute.make_strategy(name)


@pytest.mark.parametrize("raw, match", [
    (None, "not set"),
    ("{not json", "not JSON"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "0 <= i < 1"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "'type': 'worker'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": true}}', "0 <= i < 1"),
])
def test_bad_tf_config_is_named(raw, match):
    environ = {} if raw is None else {"TF_CONFIG": raw}
    with pytest.raises(ValueError, match=match):
        distribute.check_tf_config(environ)
