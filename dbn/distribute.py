"""tf.distribute for the package: choosing a strategy, and the replica-aware pieces the
models' hand-written updates need.

Keras runs ``train_step`` once per replica on that replica's share of the global batch
and, in ``optimizer.apply_gradients``, *sums* the replicas' gradients.  The RBM's
contrastive-divergence statistics are therefore written as each replica's share of the
global mean: sums over the replica's rows divided by the *global* number of rows
(``global_sum`` of the counts), so the optimizer's sum is exactly the global-batch
mean whatever the split; terms that are not sums over rows (weight decay, the sparsity
penalty) are divided by the number of replicas.  Random numbers: every replica holds
the same sampler counter and folds its replica id into the key (``replica_key``), so
the replicas' streams are independent and one saved counter restores them all.  PCD
chains: every replica holds the whole chain array, runs the rows of its shard
(``shard``) and gathers the updated shards back (``all_gather``), so the saved chains
are the global ones and a run can resume on another number of replicas.

With one replica (no strategy, or a strategy over one device) every helper is the
identity and the models build exactly the graph they build without tf.distribute.

Strategies (``make_strategy``):

* ``"default"``: no distribution (TensorFlow's default strategy);
* ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over every local GPU or, on a
  machine without one, over every logical CPU device (``split_cpu`` makes them: the way
  to test data parallelism on one CPU);
* ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy``, the cluster read
  from the ``TF_CONFIG`` environment variable (checked here, before any work).
"""

from __future__ import annotations

import json
import os

STRATEGIES = ("default", "mirrored", "multiworker")


def _tf():
    import tensorflow as tf

    return tf


def split_cpu(n):
    """Split the physical CPU into ``n`` >= 1 logical devices (``/cpu:0`` ..), for a
    ``MirroredStrategy`` over them.  Must run before TensorFlow initialises its devices
    (before any tensor is made); raises RuntimeError otherwise."""
    from dbn import validation as check

    n = check.check_int("n", n, low=1)
    tf = _tf()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def check_tf_config(environ=None):
    """The parsed ``TF_CONFIG`` of a multi-worker run; ValueError naming what is wrong
    (missing, not JSON, no ``cluster.worker`` list, task index out of range)."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable "
                         '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                         '"task": {"type": "worker", "index": 0}}): it is not set')
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG={raw!r} is not JSON ({err})") from None
    workers = config.get("cluster", {}).get("worker") if isinstance(config, dict) else None
    task = config.get("task", {}) if isinstance(config, dict) else {}
    if not isinstance(workers, list) or not workers or not all(isinstance(w, str) for w in workers):
        raise ValueError(f"TF_CONFIG={raw!r}: cluster.worker must be a non-empty list of 'host:port'")
    index = task.get("index") if isinstance(task, dict) else None
    if (not isinstance(task, dict) or task.get("type") != "worker" or isinstance(index, bool)
            or not isinstance(index, int) or not 0 <= index < len(workers)):
        raise ValueError(f"TF_CONFIG={raw!r}: task must be {{'type': 'worker', 'index': i}} with "
                         f"0 <= i < {len(workers)}")
    return config


def make_strategy(name="default"):
    """The ``tf.distribute`` strategy called ``name`` (one of ``STRATEGIES``); build and
    compile models under its ``scope()``.  ValueError for an unknown name or a bad
    ``TF_CONFIG``, before TensorFlow is touched."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} must be one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        check_tf_config()
    tf = _tf()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_default(strategy):
    """Whether ``strategy`` is TensorFlow's default (no distribution).  Any other strategy,
    even over one device, aggregates gradients with a merge, which cannot sit inside an
    in-graph loop (so the stacked batches and Keras' steps loop are off under it)."""
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def scope(strategy):
    """A context manager for working under ``strategy`` (the one a model was made under):
    nothing when it is already the current one, its scope outside any other; ValueError
    inside another strategy's scope (TensorFlow cannot nest them), naming both."""
    import contextlib

    tf = _tf()
    current = tf.distribute.get_strategy()
    if current is strategy:
        return contextlib.nullcontext(strategy)
    if tf.distribute.has_strategy():
        raise ValueError(
            f"a model made under {type(strategy).__name__} is used inside the scope of "
            f"{type(current).__name__}: make it (and train it) under the strategy it trains with")
    return strategy.scope()


def in_model_scope(method):
    """Decorate a method of a model that keeps its ``distribute_strategy`` (the DBNs): the
    method runs under ``scope`` of that strategy, so what it makes and trains belongs to
    it and the run directories it opens are keyed by it."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with scope(self.distribute_strategy):
            return method(self, *args, **kwargs)
    return wrapper


def is_multi_worker(strategy):
    """Whether ``strategy`` is a MultiWorkerMirroredStrategy running on a cluster."""
    tf = _tf()
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def num_replicas():
    """Replicas in sync in the current context (1 outside any strategy)."""
    tf = _tf()
    context = tf.distribute.get_replica_context()
    if context is not None:
        return int(context.num_replicas_in_sync)
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def replica_id():
    """This replica's index in its sync group (a scalar int32 tensor; 0 outside)."""
    tf = _tf()
    context = tf.distribute.get_replica_context()
    if context is None or num_replicas() == 1:
        return tf.constant(0, tf.int32)
    return tf.cast(context.replica_id_in_sync_group, tf.int32)


def global_sum(x):
    """The sum of ``x`` (any nest of tensors) over the replicas: ``x`` itself with one."""
    tf = _tf()
    if num_replicas() == 1:
        return x
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, x)


def all_gather(x, axis=0):
    """The replicas' ``x`` concatenated along ``axis`` in replica order (``x`` with one)."""
    tf = _tf()
    if num_replicas() == 1:
        return x
    return tf.distribute.get_replica_context().all_gather(x, axis=axis)


def shard(x, axis=0):
    """This replica's equal share of ``x`` along ``axis`` (``x`` with one replica); the
    length of that axis must be a multiple of the number of replicas."""
    tf = _tf()
    n = num_replicas()
    if n == 1:
        return x
    rank, size = x.shape.rank, x.shape[axis] // n
    begin = tf.one_hot(axis, rank, dtype=tf.int32) * replica_id() * size
    return tf.slice(x, begin, [size if i == axis else -1 for i in range(rank)])


def replica_key(key):
    """A stateless-RNG key (2,) int64 for this replica: ``key`` itself with one replica
    and outside the replicas (sampling after training draws what it draws without a
    strategy), else (key[0], key[1] * R + r) for replica r of R: every (counter,
    replica) pair gets its own key, so the replicas' streams never share a draw.  Keys
    advance their second element by one per draw (a counter), never by more."""
    tf = _tf()
    context = tf.distribute.get_replica_context()
    if context is None or num_replicas() == 1:
        return key
    R = tf.constant(num_replicas(), key.dtype)
    return tf.stack([key[0], key[1] * R + tf.cast(replica_id(), key.dtype)])
