"""train.amp_bf16_cpu: bf16 autocast for training and evaluation on a CPU, refused where the CPU has
no native bf16, and a setting older runs never had (they still match the grid at its default)."""
import dataclasses

import pytest
import torch

from common.errors import UserError
from conftest import compose_cfg, model_setup
from train import runtime
from train.config import comparable, to_dict
from train.trainer import train_step

CPU = torch.device("cpu")


def test_the_cpu_setting_alone_turns_bf16_on_for_a_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    tcfg = compose_cfg(model="capsnet-bert").train
    assert tcfg.amp_bf16 and not tcfg.amp_bf16_cpu
    assert runtime.training_bf16(tcfg, CPU) is False            # the CUDA switch does not reach the CPU
    assert runtime.training_bf16(dataclasses.replace(tcfg, amp_bf16_cpu=True), CPU) is True
    assert runtime.training_bf16(tcfg, torch.device("cuda")) is True


def test_bf16_asked_of_a_cpu_without_it_is_one_error_naming_the_setting(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    tcfg = dataclasses.replace(compose_cfg(model="bert").train, amp_bf16_cpu=True)
    with pytest.raises(UserError, match=r"train\.amp_bf16_cpu=true: this CPU has no native bf16"):
        runtime.training_bf16(tcfg, CPU)


def test_runs_stored_before_the_setting_existed_still_match_its_default():
    stored = to_dict(compose_cfg(model="capsnet-bert"))
    del stored["train"]["amp_bf16_cpu"]                          # as an older run's metrics.json holds it
    default = to_dict(compose_cfg(model="capsnet-bert"))
    turned_on = to_dict(compose_cfg(model="capsnet-bert", overrides=["train.amp_bf16_cpu=true"]))
    assert comparable(stored) == comparable(default)
    assert comparable(turned_on) != comparable(default)


def test_a_cpu_training_step_under_the_setting_computes_in_bf16(tiny_bert):
    if not runtime.cpu_has_bf16():
        pytest.skip("this CPU has no native bf16: the setting is refused here (test above)")
    model, batch, _, _ = model_setup("capsnet-bert", "atsa", tiny_bert)
    seen = []
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = train_step(model, batch, optimizer, None, 5.0, CPU, bf16=True)
    assert seen == [torch.bfloat16]                                  # the matrix products ran in bf16
    assert torch.isfinite(loss) and loss.dtype == torch.float32      # the loss is taken in float32
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast keeps float32 weights
    train_step(model, batch, optimizer, None, 5.0, CPU, bf16=False)
    assert seen[-1] == torch.float32                                 # and without it, float32


def test_a_model_saved_before_the_setting_existed_loads_as_float32_on_the_cpu(tmp_path):
    from train.inference.api import stored_config
    stored = to_dict(compose_cfg(model="capsnet"))
    del stored["train"]["amp_bf16_cpu"]                          # as the shipped models' config.json holds it
    cfg = stored_config(tmp_path / "old.pt", {"config": dict(stored, model_name="capsnet")})
    assert cfg.train.amp_bf16_cpu is False
