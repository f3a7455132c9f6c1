"""Config composition and --set overrides (train/config.py)."""
import pytest

from src.errors import UserError
from train.config import compose


def test_task_specific_values_are_merged_for_the_dataset_task():
    assert compose("capsnet", "mams-atsa")["model"]["routing_scale"] == 4.0
    assert compose("capsnet", "mams-acsa")["model"]["routing_scale"] == 5.0
    assert compose("capsnet-bert", "mams-atsa")["train"]["lr"] == 2e-5
    assert compose("capsnet-bert", "mams-acsa")["train"]["lr"] == 3e-5


def test_set_overrides_parse_yaml_values_and_win_over_files():
    cfg = compose("capsnet", "mams-atsa", overrides=["train.epochs=3", "data.limit=50", "model.embed_projection=300",
                                                     "train.max_steps=null", "train.lr=1e-3"])
    assert cfg["train"]["epochs"] == 3 and cfg["data"]["limit"] == 50 and cfg["model"]["embed_projection"] == 300
    assert cfg["train"]["max_steps"] is None and cfg["train"]["lr"] == 1e-3


@pytest.mark.parametrize("item,message", [
    ("train.epochs=abc", "takes a number"),
    ("train.epochs=2.5", "takes a whole number"),
    ("train.bucket_by_length=3", "takes true or false"),
    ("train.nope=1", "unknown key"),
    ("nosection.x=1", "no config section"),
    ("epochs", "expected KEY=VALUE"),
])
def test_bad_set_overrides_are_user_errors(item, message):
    with pytest.raises(UserError, match=message):
        compose("capsnet", "mams-atsa", overrides=[item])


def test_unknown_model_or_dataset_names_the_available_ones():
    with pytest.raises(UserError, match="available: bert, capsnet, capsnet-bert"):
        compose("capsnet2", "mams-atsa")
    with pytest.raises(UserError, match="mams-acsa, mams-atsa"):
        compose("capsnet", "mams")
