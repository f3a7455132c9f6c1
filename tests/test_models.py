"""The model contract, checked for every registered model and each task it supports: it builds from
its own YAML config, reads exactly the fields it declares (made by the one Encoder), trains a step,
survives a checkpoint round trip with identical scores, and ignores padding. A model added to the
registry is covered here without writing a test."""
import dataclasses

import pytest
import torch

from common.errors import UserError
from conftest import DATASET_OF, SENTENCES, model_setup, model_tasks
from data_process.fields import length_field
from src.models import MODELS, build_model
from train.checkpoint import load_checkpoint, save_checkpoint
from train.config import CONFIG_ROOT, compose

MODEL_TASKS = model_tasks()



def test_every_registered_model_has_a_config_file():
    for name in MODELS:
        assert (CONFIG_ROOT / "models" / f"{name}.yaml").is_file(), name


@pytest.mark.parametrize("name,task", MODEL_TASKS)
def test_model_reads_only_declared_fields_and_scores_every_instance(name, task, tiny_bert):
    model, batch, _, _ = model_setup(name, task, tiny_bert)
    declared = set(model.input_fields())
    assert declared <= set(batch)
    with torch.no_grad():
        scores = model(batch)
    assert scores.shape == (len(SENTENCES), 3) and torch.isfinite(scores).all()
    probs = model.probabilities(scores)
    assert torch.allclose(probs.sum(-1), torch.ones(len(SENTENCES)), atol=1e-5)


@pytest.mark.parametrize("name,task", MODEL_TASKS)
def test_model_trains_one_step_and_gives_the_same_scores_after_a_checkpoint_round_trip(name, task, tiny_bert, tmp_path):
    model, batch, info, cfg = model_setup(name, task, tiny_bert)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = model.loss(model(batch).float(), batch["label"])
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    optimizer.step()
    model.eval()
    with torch.no_grad():
        before = model(batch)
    save_checkpoint(tmp_path / "checkpoint.pt", model, {"model": dataclasses.asdict(cfg)}, {})
    torch.manual_seed(123)  # a different initialisation, overwritten by the loaded weights
    fresh = build_model(name, cfg, info).eval()
    fresh.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt")["model_state"])
    with torch.no_grad():
        after = fresh(batch)
    assert torch.equal(before, after)


@pytest.mark.parametrize("name,task", MODEL_TASKS)
def test_model_scores_do_not_change_when_pad_columns_are_appended(name, task, tiny_bert):
    model, batch, _, _ = model_setup(name, task, tiny_bert)
    wider = {k: torch.cat([v, torch.zeros(v.size(0), 7, dtype=v.dtype)], dim=1) if v.dim() == 2 else v
             for k, v in batch.items()}
    with torch.no_grad():
        assert torch.allclose(model(batch), model(wider), atol=1e-5)


@pytest.mark.parametrize("name,task", MODEL_TASKS)
def test_model_scores_of_a_sentence_do_not_depend_on_the_rest_of_the_batch(name, task, tiny_bert):
    model, batch, _, _ = model_setup(name, task, tiny_bert)
    shortest = int(torch.argmin(batch[length_field(model.input_fields()[0])]))
    alone = {}
    for k, v in batch.items():
        row = v[shortest:shortest + 1]
        if v.dim() == 2:  # trimmed to this sentence's own length, as a batch of one would be
            row = row[:, :max(int(batch[length_field(k)][shortest]), 1)]
        alone[k] = row
    with torch.no_grad():
        assert torch.allclose(model(batch)[shortest], model(alone)[0], atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_refuses_a_task_it_does_not_support_with_one_clear_line(name):
    for task in ("atsa", "acsa"):
        if task in MODELS[name].tasks:
            continue
        with pytest.raises(UserError, match=f"model '{name}' does not support the {task.upper()} task"):
            compose(name, DATASET_OF[task])
