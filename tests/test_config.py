"""Config composition and --set overrides (train/config.py)."""
import re

import pytest

from common.errors import UserError
from train.config import CONFIG_ROOT, compose


def test_task_specific_values_are_merged_for_the_dataset_task():
    assert compose("capsnet", "mams-atsa").model.routing_scale == 4.0
    assert compose("capsnet", "mams-acsa").model.routing_scale == 5.0
    assert compose("capsnet-bert", "mams-atsa").train.lr == 2e-5
    assert compose("capsnet-bert", "mams-acsa").train.lr == 3e-5


def test_set_overrides_parse_yaml_values_and_win_over_files():
    cfg = compose("capsnet", "mams-atsa", overrides=["train.epochs=3", "data.limit=50", "model.embed_projection=300",
                                                     "train.max_steps=null", "train.lr=1e-3"])
    assert cfg.train.epochs == 3 and cfg.data.limit == 50 and cfg.model.embed_projection == 300
    assert cfg.train.max_steps is None and cfg.train.lr == 1e-3


@pytest.mark.parametrize("item,message", [
    ("train.epochs=abc", "train.epochs takes a whole number, not 'abc'"),
    ("train.epochs=2.5", "train.epochs takes a whole number"),
    ("train.bucket_by_length=3", "train.bucket_by_length takes true or false"),
    ("train.nope=1", "unknown key train.nope"),
    ("nosection.x=1", "unknown top-level key nosection"),
    ("epochs", "expected KEY=VALUE"),
    ("train.lr=nan", "train.lr takes a finite number, not nan"),          # nan passes every range check
    ("model.dropout=.nan", "model.dropout takes a finite number, not nan"),
    ("train.weight_decay=inf", "train.weight_decay takes a finite number, not inf"),
    ("train.grad_clip=-.inf", "train.grad_clip takes a finite number, not -inf"),
    ("inference.max_delay_ms=nan", "inference.max_delay_ms takes a finite number, not nan"),
    ("run_name=../../elsewhere", r"run_name='../../elsewhere' is not a plain folder name"),
    ("run_name=/tmp/abs", r"run_name='/tmp/abs' is not a plain folder name"),
    ("run_name=''", r"run_name is blank"),
    ("run_name=..", r"run_name='..' is not a plain folder name"),
])
def test_bad_set_overrides_are_user_errors(item, message):
    with pytest.raises(UserError, match=message):
        compose("capsnet", "mams-atsa", overrides=[item])


def _listed(err):
    """The names in a message's '(available: a, b, c)' (up to a ')' or a ';' that adds a note)."""
    return re.search(r"\(available: ([^;)]*)", str(err.value)).group(1).split(", ")


def test_unknown_model_or_dataset_names_the_available_ones():
    # more models and datasets join over time: the list is the config files', sorted
    with pytest.raises(UserError, match=r"unknown model 'capsnet2' \(available: ") as err:
        compose("capsnet2", "mams-atsa")
    models = _listed(err)
    assert {"bert", "capsnet", "capsnet-bert"} <= set(models)
    assert models == sorted(p.stem for p in (CONFIG_ROOT / "models").glob("*.yaml"))
    with pytest.raises(UserError, match=r"unknown dataset 'mams' \(available: .*mams-acsa, mams-atsa") as err:
        compose("capsnet", "mams")
    assert _listed(err) == sorted(p.stem for p in (CONFIG_ROOT / "datasets").glob("*.yaml"))


def test_an_experiment_file_that_gives_a_key_twice_is_one_error_naming_file_key_and_line(tmp_path):
    experiment = tmp_path / "twice.yaml"
    experiment.write_text("train:\n  epochs: 3\n  lr: 0.01\n  epochs: 4\n")    # YAML itself would keep 4
    with pytest.raises(UserError, match=rf"^{experiment}: not valid YAML \(key 'epochs' given twice, line 4\)$"):
        compose("capsnet", "mams-atsa", str(experiment))
