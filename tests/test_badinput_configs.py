"""Bad values in the config dataclasses (RBMTrainingConfig, FineTuneConfig,
UpDownConfig): every field is checked in __post_init__ against one constraint table,
the error names the field; numpy scalars are stored as Python ones; a valid config's
``to_dict()`` (hashed into cache keys) is exactly what it was before validation."""

import hashlib
import json

import numpy as np
import pytest

from dbn.models.dbn import HINTON_LAYER
from dbn.training.configs import FineTuneConfig
from dbn.training.configs import UpDownConfig
from dbn.training.configs import RBMTrainingConfig

NAN, INF = float("nan"), float("inf")


def key(config):
    # UpDownConfig's cache key leaves out options added later at their neutral value.
    settings = config.cache_settings() if isinstance(config, UpDownConfig) else config.to_dict()
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


# Keys computed on 62b2b0c (before validation): cached results stay addressable.
@pytest.mark.parametrize("config, expected", [
    (RBMTrainingConfig(), "609d96cc6955"),
    (HINTON_LAYER, "7dc42003b609"),
    (FineTuneConfig(), "0c4c938d3467"),
    (FineTuneConfig(momentum=1, learning_rate=1), "43e660283ce6"),
    (UpDownConfig(), "f64d0f91fe4d"),
    (UpDownConfig(k_schedule=[1, 2]), "cc4e6f830c27"),
])
def test_valid_configs_keep_their_cache_keys(config, expected):
    assert key(config) == expected


@pytest.mark.parametrize("overrides, field", [
    (dict(epochs=True), "epochs"), (dict(epochs=2.0), "epochs"), (dict(epochs="10"), "epochs"),
    (dict(n_hidden=True), "n_hidden"), (dict(batch_size=2.5), "batch_size"),
    (dict(k=2.5), "k"), (dict(final_k=2.5), "final_k"), (dict(final_k=0), "final_k"),
    (dict(final_k=True), "final_k"),
    (dict(learning_rate=INF), "learning_rate"), (dict(learning_rate=True), "learning_rate"),
    (dict(learning_rate="0.1"), "learning_rate"), (dict(learning_rate=None), "learning_rate"),
    (dict(final_learning_rate=-0.1), "final_learning_rate"),
    (dict(final_learning_rate=NAN), "final_learning_rate"),
    (dict(final_learning_rate=INF), "final_learning_rate"),
    (dict(initial_momentum=NAN), "initial_momentum"), (dict(final_momentum=INF), "final_momentum"),
    (dict(momentum_switch_epoch=-1), "momentum_switch_epoch"),
    (dict(momentum_switch_epoch=2.5), "momentum_switch_epoch"),
    (dict(persistent=1), "persistent"), (dict(persistent="False"), "persistent"),
    (dict(n_chains=0), "n_chains"), (dict(weight_decay=NAN), "weight_decay"),
    (dict(weight_decay=-1e-4), "weight_decay"), (dict(sparsity_target=1.0), "sparsity_target"),
    (dict(sparsity_target=NAN), "sparsity_target"), (dict(sparsity_cost=-0.1), "sparsity_cost"),
    (dict(sparsity_cost=1.0), "sparsity_cost"),  # without a target: it would do nothing
])
def test_rbm_training_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"^{field}="):
        RBMTrainingConfig(**overrides)


def test_rbm_training_config_accepts_numpy_scalars_and_stores_python_types():
    config = RBMTrainingConfig(n_hidden=np.int64(5), epochs=np.int32(3), learning_rate=np.float32(0.5),
                               k=np.int64(1), final_k=np.int64(3), persistent=np.bool_(True),
                               weight_decay=np.float64(2e-4))
    d = config.to_dict()
    assert d["n_hidden"] == 5 and type(d["n_hidden"]) is int
    assert type(d["epochs"]) is int and type(d["final_k"]) is int and type(d["persistent"]) is bool
    assert type(d["learning_rate"]) is float and type(d["weight_decay"]) is float
    json.dumps(d)
    assert key(RBMTrainingConfig(n_hidden=np.int64(500))) == key(RBMTrainingConfig())
    assert RBMTrainingConfig(momentum_switch_epoch=0, final_learning_rate=None).epochs == 20


@pytest.mark.parametrize("overrides, field", [
    (dict(batch_size=2.5), "batch_size"), (dict(batch_size=True), "batch_size"),
    (dict(max_epochs="10"), "max_epochs"), (dict(max_epochs=10.0), "max_epochs"),
    (dict(patience=1.5), "patience"), (dict(patience=False), "patience"),
    (dict(plateau_patience=2.0), "plateau_patience"),
    (dict(output_only_epochs=1.0), "output_only_epochs"),
    (dict(output_only_epochs=True), "output_only_epochs"),
    (dict(learning_rate=INF), "learning_rate"), (dict(learning_rate="1e-3"), "learning_rate"),
    (dict(momentum=NAN), "momentum"), (dict(momentum="0.9"), "momentum"),
    (dict(plateau_factor=NAN), "plateau_factor"), (dict(optimizer=None), "optimizer"),
    (dict(optimizer="Adam"), "optimizer"), (dict(refit=1), "refit"),
])
def test_finetune_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"^{field}="):
        FineTuneConfig(**overrides)


def test_finetune_config_numpy_scalars():
    config = FineTuneConfig(batch_size=np.int64(50), max_epochs=np.int64(10), learning_rate=np.float32(0.5),
                            refit=np.bool_(True))
    d = config.to_dict()
    assert (type(d["batch_size"]), type(d["max_epochs"]), type(d["learning_rate"]), type(d["refit"])) == (
        int, int, float, bool)
    assert key(FineTuneConfig(batch_size=np.int64(100))) == key(FineTuneConfig())


@pytest.mark.parametrize("overrides, field", [
    (dict(epochs=True), "epochs"), (dict(epochs=1.5), "epochs"), (dict(epochs="3"), "epochs"),
    (dict(batch_size=0), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(learning_rate=NAN), "learning_rate"), (dict(learning_rate=INF), "learning_rate"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(k_schedule=()), "k_schedule"), (dict(k_schedule=(3, 2.5)), "k_schedule"),
    (dict(k_schedule=(True,)), "k_schedule"), (dict(k_schedule="36"), "k_schedule"),
    (dict(k_schedule=5), "k_schedule"),
    (dict(momentum=1.0), "momentum"), (dict(momentum=-0.1), "momentum"),
    (dict(momentum=NAN), "momentum"), (dict(momentum=True), "momentum"),
    (dict(weight_decay=-1e-4), "weight_decay"), (dict(weight_decay=INF), "weight_decay"),
    (dict(weight_decay="0"), "weight_decay"),
])
def test_up_down_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"^{field}="):
        UpDownConfig(**overrides)


def test_up_down_config_numpy_scalars():
    config = UpDownConfig(epochs=np.int64(9), k_schedule=(np.int64(3), 6, 10))
    assert config.cache_settings() == {"epochs": 9, "learning_rate": 0.01, "batch_size": 100,
                                       "k_schedule": (3, 6, 10)}
    # Momentum and weight decay enter the key once they change the run.
    tuned = UpDownConfig(momentum=np.float32(0.5), weight_decay=0)
    assert type(tuned.momentum) is float and type(tuned.weight_decay) is float
    assert tuned.cache_settings()["momentum"] == 0.5 and "weight_decay" not in tuned.cache_settings()
    assert key(UpDownConfig(weight_decay=1e-5)) != key(UpDownConfig())
    assert type(config.k_schedule[0]) is int
    assert config.k_at(np.int64(8)) == 10
    with pytest.raises(ValueError, match="epoch=-1"):
        config.k_at(-1)


def test_experiment_options_carry_both_precisions():
    """--pretrain-precision and --finetune-precision reach the configs the experiments
    build; a precision outside PRECISIONS stops argparse (exit 2) before any work."""
    from dbn import options

    parser = options.parser("test")
    args = parser.parse_args(["--pretrain-precision", "bfloat16", "--finetune-precision", "bfloat16"])
    assert options.layer_config(args).precision == "bfloat16"
    assert options.finetune_config(args).precision == "bfloat16"
    defaults = parser.parse_args([])
    assert options.finetune_config(defaults) == FineTuneConfig()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--finetune-precision", "float16"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("argv, named", [
    (["--lr", "-1"], "--lr: learning_rate=-1.0"),
    (["--pretrain-lr", "nan"], "--pretrain-lr: learning_rate=nan"),
    (["--max-epochs", "0"], "--max-epochs: max_epochs=0"),
    (["--plateau-factor", "1.5"], "--plateau-factor: plateau_factor=1.5"),
    (["--tune-lr", "1e-3", "-0.003"], "--tune-lr[1]=-0.003 must be"),
    (["--tune-lr", "1e-3", "nan"], "--tune-lr[1]=nan must be"),
    (["--tune-lr", "1e-3", "1e-3"], "--tune-lr=[0.001, 0.001] must be a non-empty list of distinct rates"),
    (["--tune-lr", "1e-3", "3e-3", "--tune-seed", "-1"], "--tune-seed=-1 must be"),
    (["--tune-lr", "1e-3", "3e-3", "--tune-extend", "-1"], "--tune-extend=-1 must be"),
    (["--tune-extend", "1"], "--tune-extend 1: needs --tune-lr with >= 2 rates"),
    (["--tune-lr", "1e-3", "--tune-extend", "2"], "--tune-extend 2: needs --tune-lr with >= 2 rates"),
    (["--tune-dropout", "0.1,0.25"], "--tune-dropout: needs --tune-lr"),
    (["--tune-lr", "1e-3", "--tune-dropout", "0.1,x"], "--tune-dropout '0.1,x': allowed: a rate, or INPUT,HIDDEN"),
    (["--tune-lr", "1e-3", "--tune-dropout", "0.1,0.2,0.3"], "allowed: a rate, or INPUT,HIDDEN"),
    (["--tune-lr", "1e-3", "--tune-dropout", "1.0"], "--tune-dropout=1.0 must be"),
    (["--tune-lr", "1e-3", "--tune-dropout", "nan"], "--tune-dropout=nan must be"),
    (["--tune-lr", "1e-3", "--dropout", "0.2", "0.5", "--tune-dropout", "0.2,0.5"], "settings without repeats"),
    (["--tune-lr", "1e-3", "--dropout", "0.5", "--tune-dropout", "0,0.5"], "settings without repeats"),
])
def test_experiment_options_refuse_bad_values_at_parse_time(argv, named, capsys):
    """A value the config refuses stops the experiment's parser (exit 2, one line naming
    the option and the allowed values) instead of a traceback after TensorFlow's import."""
    from dbn import options

    with pytest.raises(SystemExit) as exit_info:
        options.parse_args(options.parser("test", tune_dropout=True), argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    # The defaults, and good values, pass.
    assert options.parse_args(options.parser("test"), ["--lr", "0.01"]).lr == 0.01
    good = options.parse_args(options.parser("test", tune_dropout=True), ["--tune-lr", "1e-3", "--dropout", "0.2", "0.5",
                                                       "--tune-dropout", "0.1,0.25", "0.3"])
    assert [options.dropout_setting(t) for t in good.tune_dropout] == [(0.1, 0.25), 0.3]
    with pytest.raises(SystemExit):  # where no comparison uses it (baselines, generative), no option
        options.parse_args(options.parser("test"), ["--tune-lr", "1e-3", "--tune-dropout", "0.3"])


def test_rbm_options_refuse_incompatible_samplers_at_parse_time(capsys):
    """Cross-field rules (fast weights or parallel tempering, not both) stop train_rbm's
    parser too, naming an option."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "train_rbm.py"
    spec = importlib.util.spec_from_file_location("train_rbm_options", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(["--pcd", "--fast-lr", "0.05", "--temperatures", "10"])
    assert exit_info.value.code == 2
    assert "--fast-lr: fast_learning_rate=0.05 with n_temperatures=10" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        module.parse_args(["--fast-lr", "0.05"])  # fast weights need --pcd


def test_rates_are_python_floats():
    """Integer rates come back as floats: the tuning runs' keys ("1.0") and the chosen
    rate (1.0) are then one and the same, so the chosen run is found in the cache."""
    from dbn import validation

    rates = validation.check_rates("rates", [1, np.float32(3)])
    assert rates == [1.0, 3.0] and all(type(r) is float for r in rates)
    with pytest.raises(ValueError, match=r"rates=\[\] must be a non-empty list"):
        validation.check_rates("rates", [])
    with pytest.raises(ValueError, match="rates='1e-3' must be a non-empty list"):
        validation.check_rates("rates", "1e-3")


def test_quick_never_replaces_an_option_given_on_the_command_line_even_at_its_default():
    from dbn import options

    """--quick shrinks the defaults, not what the user typed: ``--seeds 0 1 2`` (the
    default) stays [0, 1, 2] instead of quick's first two, ``--lr 0.001`` (the default)
    stays; an option left out is shrunk."""
    argv = ["--quick", "--seeds", "0", "1", "2", "--lr", "0.001"]
    args = options.parse_args(options.parser("test"), argv, max_epochs=2, lr=0.5)
    assert args.seeds == [0, 1, 2] and args.lr == 0.001
    shrunk = options.parse_args(options.parser("test"), ["--quick"], max_epochs=2, lr=0.5)
    assert shrunk.seeds == [0, 1] and shrunk.lr == 0.5 and shrunk.max_epochs == args.max_epochs == 2
    assert options.given_options(options.parser("test"), argv) == {"quick", "seeds", "lr"}
