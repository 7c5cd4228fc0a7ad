"""Deep Belief Network: greedy layer-wise RBM pretraining, unrolling to Keras, generation.

Hinton, Osindero & Teh (2006); Hinton & Salakhutdinov (2006).  Layer 1 is a Bernoulli
RBM on binarized pixels (re-binarized stochastically every epoch); every higher layer is
trained on the hidden *probabilities* of the layer below (``sample_hidden=True`` trains
on sampled binary states instead).  ``to_classifier`` turns the stack into an ordinary
``keras.Sequential`` of sigmoid ``Dense`` layers plus a softmax output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dbn import distribute
from dbn import validation as check
from dbn.data import pipeline
from dbn.models.classifier import INITS, build_classifier, check_layer_sizes
from dbn.models.rbm import _check_positive_int
from dbn.ops import bernoulli_np
from dbn.seeds import layer_seed
from dbn.training.checkpoint import MANIFEST, RunDir, fingerprint, run_path, warn_legacy
from dbn.training.configs import HINTON_LAYER, RBMTrainingConfig
from dbn.training.pretrain import (build_rbm, epoch_batches, finished_rbm,
                          record_pretraining_time, save_finished_rbm, train_rbm)


def check_layer_configs(layer_configs, n_layers):
    """One ``RBMTrainingConfig`` or a list/tuple of them (a list of ``n_layers`` when a
    sequence); returns a list."""
    if isinstance(layer_configs, RBMTrainingConfig):
        return [layer_configs] * n_layers
    if not isinstance(layer_configs, (list, tuple)) or not all(
            isinstance(c, RBMTrainingConfig) for c in layer_configs):
        raise ValueError(f"layer_configs={layer_configs!r} must be an RBMTrainingConfig or a "
                         f"list of {n_layers} of them (one per layer)")
    return list(layer_configs)


class DBN:
    """A stack of RBMs pretrained greedily.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_visible, n_hidden_1, ..., n_hidden_L]``, e.g. ``[784, 500, 500, 2000]``.
    layer_configs : RBMTrainingConfig or sequence of them, optional
        Training settings per layer (one config is used for every layer). Their
        ``n_hidden`` is overridden by ``layer_sizes``. Default: ``HINTON_LAYER``.
    sample_hidden : bool, default False
        Train upper layers on sampled hidden states instead of probabilities.
    binarize_input : bool, default True
        Layer 1 sees the images binarized stochastically anew every epoch (a binary
        RBM); False: the grey levels themselves, used as probabilities (Hinton &
        Salakhutdinov's autoencoder, ``visible_data="probabilities"``).
    seed : int >= 0

    Every argument is checked here (ValueError naming it).
    """

    def __init__(self, layer_sizes, *, layer_configs=None, sample_hidden=False, seed=0,
                 binarize_input=True):
        self.layer_sizes = check_layer_sizes(layer_sizes)
        n_layers = len(self.layer_sizes) - 1
        if layer_configs is None:
            layer_configs = HINTON_LAYER
        layer_configs = check_layer_configs(layer_configs, n_layers)
        sample_hidden = check.check_bool("sample_hidden", sample_hidden)
        self.binarize_input = bool(check.check_bool("binarize_input", binarize_input))
        seed = check.check_seed("seed", seed)
        if len(layer_configs) != n_layers:
            raise ValueError(
                f"{len(layer_configs)} layer configs for {n_layers} layers ({list(self.layer_sizes)})"
            )
        self.layer_configs = [
            _with_hidden(cfg, n) for cfg, n in zip(layer_configs, self.layer_sizes[1:])
        ]
        self.sample_hidden = bool(sample_hidden)
        self.seed = int(seed)
        self.rbms = []
        # The tf.distribute strategy in scope when the DBN was made (as a Keras model does):
        # pretraining makes and trains its RBMs under it.
        self.distribute_strategy = tf.distribute.get_strategy()

    # ---------------------------------------------------------------- pretraining
    @property
    def pretrained(self):
        return len(self.rbms) == len(self.layer_configs)

    def describe(self):
        """JSON-ready architecture and settings (stored beside checkpoints)."""
        return {
            "layer_sizes": list(self.layer_sizes),
            "layer_configs": [cfg.to_dict() for cfg in self.layer_configs],
            "sample_hidden": self.sample_hidden,
            "seed": self.seed,
            **self._input_setting(),
        }

    def _input_setting(self):
        """``binarize_input`` for keys and descriptions, left out at its original value
        (True) so that layers cached before it existed keep their keys."""
        return {} if self.binarize_input else {"binarize_input": False}

    def layer_spec(self, i, data_key):
        """Everything that determines layer ``i`` (sizes and settings of layers 0..i, seed,
        the full hash of the data), so that stacks sharing a prefix (784-500,
        784-500-500, 784-500-500-2000) share their pretrained lower layers."""
        return {"what": "dbn_layer", "layer_sizes": list(self.layer_sizes[: i + 2]),
                "layer_configs": [c.to_dict() for c in self.layer_configs[: i + 1]],
                "sample_hidden": self.sample_hidden, "seed": self.seed, "data": data_key,
                **self._input_setting()}

    def layer_path(self, i, data_key, checkpoint_dir):
        """Run directory of layer ``i`` in a layer cache: ``layer{i}_{sizes}_seed{s}_{hash}``."""
        prefix = f"layer{i}_{'-'.join(map(str, self.layer_sizes[: i + 2]))}_seed{self.seed}"
        return run_path(checkpoint_dir, prefix, self.layer_spec(i, data_key))

    @distribute.in_model_scope  # its RBMs are made, trained and keyed under the DBN's strategy
    def pretrain(self, x, *, checkpoint_dir=None, verbose=2, timings=None):
        """Greedy layer-wise pretraining on images ``x`` (n, D) with grey levels in [0, 1].

        Layer 1 sees ``x`` binarized stochastically anew every epoch; layer l+1 sees the
        hidden probabilities of layer l given the layer below's mean-field input.  With
        ``checkpoint_dir`` every layer is a verified, locked run directory there
        (``layer_path``: keyed by its settings and a hash of every byte of ``x``), shared
        by every stack with the same lower layers; a finished layer is loaded, a killed
        one resumes after its last finished epoch.  ``timings`` (a dict) receives each
        layer's wall time in this call (``pretrain_layer_{i}_seconds``, near zero when
        cached) and, with a checkpoint, the time its training took over all sessions
        (``pretrain_layer_{i}_training_seconds``).

        ``x`` must be non-empty, finite and in [0, 1], with ``layer_sizes[0]`` columns;
        ``checkpoint_dir`` a directory or None, ``timings`` a dict or None.

        Returns
        -------
        histories : list of dict
            Keras logs per layer (empty for layers loaded from a checkpoint).
        """
        x = check.check_matrix("x", x, n_columns=self.layer_sizes[0], allow_empty=False,
                               columns_what="this DBN's input size is")  # before any training
        _check_dir("checkpoint_dir", checkpoint_dir)
        if timings is not None and not isinstance(timings, dict):
            raise ValueError(f"timings={timings!r} must be a dict (filled in) or None")
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        data_key = fingerprint(x) if ckpt is not None else None
        if ckpt is not None:
            warn_legacy(ckpt)
        histories, self.rbms = [], []
        inputs = x
        for i, config in enumerate(self.layer_configs):
            t0 = time.time()
            run = (RunDir(self.layer_path(i, data_key, ckpt), self.layer_spec(i, data_key),
                          what=f"DBN layer {i}") if ckpt is not None else contextlib.nullcontext())
            with run as run:
                rbm, history = self._train_layer(i, config, inputs, run, verbose)
                record_pretraining_time(timings, f"pretrain_layer_{i}", t0, run)
            if (rbm.n_visible, rbm.n_hidden) != tuple(self.layer_sizes[i : i + 2]):
                raise ValueError(f"layer {i} from {run.path if run else 'training'} is a "
                                 f"{rbm.n_visible}x{rbm.n_hidden} RBM; expected "
                                 f"{self.layer_sizes[i]}x{self.layer_sizes[i + 1]}")
            histories.append(history)
            self.rbms.append(rbm)
            inputs = rbm.transform(inputs)
        return histories

    def _train_layer(self, i, config, inputs, run, verbose):
        """Layer ``i`` trained on ``inputs`` (resumed or loaded from ``run`` if given)."""
        rbm = finished_rbm(run)
        if rbm is not None:
            return rbm, {}
        seed = layer_seed(self.seed, i)
        # Each epoch's batches depend on (seed, epoch) only: exact resume.
        if i == 0 and self.binarize_input:
            train = epoch_batches(inputs, batch_size=config.batch_size, seed=seed,
                                  binarization="stochastic")
            init = pipeline.binarize(inputs, "stochastic", seed=seed)
        elif i == 0:
            train = epoch_batches(inputs, batch_size=config.batch_size, seed=seed)
            init = inputs
        else:
            train = epoch_batches(self._layer_input(inputs, seed), batch_size=config.batch_size,
                                  seed=seed)
            init = inputs

        keras.utils.set_random_seed(seed)
        binary = i == 0 and self.binarize_input
        rbm = build_rbm(config, visible_data="binary" if binary else "probabilities", seed=seed)
        history = train_rbm(rbm, train, config, steps_per_epoch=math.ceil(len(inputs) / config.batch_size),
                            init_data=init, checkpoint=run, verbose=verbose)
        if run is not None:
            save_finished_rbm(run, rbm)
        return rbm, history

    def _layer_input(self, probabilities, seed):
        if not self.sample_hidden:
            return probabilities
        rng = np.random.default_rng(seed)
        return bernoulli_np(probabilities, rng)

    def _load_layer(self, path, i):
        rbm = keras.models.load_model(path)
        expected = self.layer_sizes[i : i + 2]
        if (rbm.n_visible, rbm.n_hidden) != expected:
            raise ValueError(f"checkpoint {path} holds a {rbm.n_visible}x{rbm.n_hidden} RBM; "
                             f"layer {i} of this DBN is {expected[0]}x{expected[1]}")
        return rbm

    # ---------------------------------------------------------------- save / load
    SAVED = {"what": "saved DBN"}  # the spec of every DBN.save directory

    def save(self, directory):
        """Write the DBN to ``directory``: a run directory (``dbn.training.checkpoint.RunDir``) whose
        manifest holds ``describe()`` and the SHA-256 of each ``layer_<i>.keras``, so
        ``load`` refuses a damaged file by name.  Saving again replaces its contents."""
        _check_dir("directory", directory, optional=False)
        self._require_pretrained("save")
        with RunDir(directory, self.SAVED, what="saved DBN", keyed_by_strategy=False) as run:
            run.save(dbn=self.describe(), drop=[n for n in _saved_layers(run)],
                     files={f"layer_{i}.keras": rbm.save for i, rbm in enumerate(self.rbms)})

    @classmethod
    def load(cls, directory, *, expect_layer_sizes=None):
        """Load a DBN written by ``save``, after checking every file's hash.
        ``expect_layer_sizes`` guards against loading a checkpoint of a different
        architecture (ValueError naming both)."""
        _check_dir("directory", directory, optional=False)
        if expect_layer_sizes is not None:
            expect_layer_sizes = check_layer_sizes(expect_layer_sizes)
        directory = Path(directory)
        if not (directory / MANIFEST).is_file():
            raise FileNotFoundError(f"{directory / MANIFEST} not found: not a directory written "
                                    "by DBN.save")
        with RunDir(directory, cls.SAVED, what="saved DBN", keyed_by_strategy=False) as run:
            spec = run.state("dbn")
            if spec is None:
                raise FileNotFoundError(f"{directory} holds no saved DBN (no 'dbn' state)")
            if expect_layer_sizes is not None and list(expect_layer_sizes) != spec["layer_sizes"]:
                raise ValueError(f"checkpoint {directory} is a {spec['layer_sizes']} DBN; "
                                 f"expected {list(expect_layer_sizes)}")
            model = cls(spec["layer_sizes"], sample_hidden=spec["sample_hidden"], seed=spec["seed"],
                        binarize_input=spec.get("binarize_input", True),
                        layer_configs=[RBMTrainingConfig(**c) for c in spec["layer_configs"]])
            model.rbms = [model._load_layer(run.file(f"layer_{i}.keras"), i)
                          for i in range(len(model.layer_configs))]
        return model

    # ---------------------------------------------------------------- inference
    def _require_pretrained(self, what):
        if not self.pretrained:
            raise ValueError(
                f"{what} needs a pretrained DBN: call pretrain() first "
                f"({len(self.rbms)} of {len(self.layer_configs)} layers trained)"
            )

    def transform(self, x):
        """Upward pass: top-layer E[h] (probabilities; linear means for Gaussian units),
        (n, D) -> (n, H_L); ``x`` finite
        in [0, 1] with ``layer_sizes[0]`` columns."""
        self._require_pretrained("transform")
        out = check.check_matrix("x", x, n_columns=self.layer_sizes[0],
                                 columns_what="this DBN's input size is")
        for rbm in self.rbms:
            out = rbm.transform(out)
        return out

    def to_classifier(self, n_classes, *, init="pretrained", dropout=0.0, seed=None):
        """Unroll into a ``keras.Sequential`` classifier (see ``build_classifier``)."""
        init = check.check_choice("init", init, INITS)
        seed = check.check_seed("seed", seed, optional=True)
        linear = [i for i, c in enumerate(self.layer_configs) if c.hidden_units != "bernoulli"]
        if linear:
            raise ValueError(f"to_classifier: layers {linear} have hidden_units='gaussian' but the "
                             "classifier's hidden layers are sigmoid; use "
                             "dbn.models.autoencoder.DeepAutoencoder for a linear code layer")
        if init == "pretrained":
            self._require_pretrained("to_classifier(init='pretrained')")
        return build_classifier(self.layer_sizes, n_classes, init=init,
                                rbms=self.rbms if init == "pretrained" else None,
                                dropout=dropout, seed=self.seed if seed is None else seed)

    def generate(self, n, *, gibbs_steps=1000, seed=None, verbose=0):
        """Sample ``n`` digits: a ``gibbs_steps`` chain in the top RBM, then one
        top-down pass through the lower layers' generative weights (sampled binary
        states in hidden layers, pixel *probabilities* at the bottom).

        ``n`` and ``gibbs_steps`` are integers >= 1, ``seed`` an integer >= 0 or None
        (the DBN's seed).

        Returns
        -------
        images : ndarray (n, D)
        """
        _check_positive_int("n", n)
        _check_positive_int("gibbs_steps", gibbs_steps)
        seed = check.check_seed("seed", seed, optional=True)
        self._require_pretrained("generate")
        seed = self.seed if seed is None else seed
        state = self.rbms[-1].sample(n, gibbs_steps, seed=seed, verbose=verbose)
        rng = np.random.default_rng(seed)
        for rbm in reversed(self.rbms[:-1]):
            state = bernoulli_np(state, rng)
            state = rbm.visible_given_hidden(state)
        return state


def _saved_layers(run):
    return [f"layer_{i}.keras" for i in range(1000) if run.has(f"layer_{i}.keras")]


def _check_dir(name, path, *, optional=True):
    if (path is None and not optional) or (path is not None and not isinstance(path, (str, Path))):
        raise ValueError(f"{name}={path!r} must be a directory (str or Path)"
                         + (" or None" if optional else ""))


def data_fingerprint(x):
    """SHA-256 of every byte of ``x`` (with its dtype and shape): names cached work.
    Kept for old imports; see ``dbn.training.checkpoint.fingerprint``."""
    return fingerprint(x)


def _with_hidden(config, n_hidden):
    return dataclasses.replace(config, n_hidden=n_hidden)
