"""CUDA graphs for training steps and validation forwards (train/cuda_graphs.py) and what they rely
on: batch widths rounded up for fewer shapes (src/dataset.py), the sync-free BiGRU on CUDA
(src/gru.py), and when they are used. The tests marked `cuda` need a GPU (CI has none; they run on
the device machine: benchmarks/gpu_speed.sh, results in docs/RESULTS.md)."""
import dataclasses

import pytest
import torch

from conftest import compose_cfg, tiny_capsnet
from src.dataset import make_eval_loader, make_loader
from src.gru import bidirectional_gru
from src.models import get_model_class
from train.cuda_graphs import GraphedForward, GraphedSteps, can_use
from train.trainer import make_optimizer, predict_scores, train_step, update

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny(overrides=()):
    cfg = compose_cfg("mams-atsa", overrides=["model.capsule_size=8", "model.dropout=0.0", *overrides])
    return cfg, *tiny_capsnet(cfg)


def tiny_on_cuda():
    """(cfg, tiny CapsNet, its dataset), both on the GPU."""
    cfg, model, data = tiny()
    device = torch.device("cuda")
    return cfg, model.to(device), data.to(device)


def test_graphs_are_used_only_on_cuda_for_safe_models_at_a_constant_rate_without_bf16():
    cfg, model, _ = tiny()
    cuda_device, tcfg = torch.device("cuda"), cfg.train
    assert tcfg.cuda_graphs and model.cuda_graph_safe
    assert can_use(model, tcfg, cuda_device)
    assert not can_use(model, tcfg, torch.device("cpu"))
    assert not can_use(model, dataclasses.replace(tcfg, cuda_graphs=False), cuda_device)
    assert not can_use(model, dataclasses.replace(tcfg, warmup_ratio=0.1), cuda_device)
    assert not can_use(model, dataclasses.replace(tcfg, amp_bf16=True), cuda_device)
    # models whose step reads lengths on the host (packed LSTMs) do not declare themselves safe
    assert not get_model_class("lstm").cuda_graph_safe and not get_model_class("capsnet-bert").cuda_graph_safe


def test_rounded_batch_widths_cut_fewer_shapes_and_change_no_score():
    cfg, model, data = tiny()
    exact = list(make_loader(data, 8))
    rounded = list(make_loader(data, 8, width_multiple=4))
    full = data.arrays["context"].size(1)                  # 9: widths round up to 4 or 8, or stop at 9
    for a, b in zip(exact, rounded):
        width = a["context"].size(1)
        assert b["context"].size(1) == min(-(-width // 4) * 4, full)
        assert torch.equal(b["context"][:, :width], a["context"]) and not b["context"][:, width:].any()
        model.eval()
        torch.testing.assert_close(model(b), model(a), rtol=1e-5, atol=1e-6)


class StandInGraphs:
    """On the CPU, a "graph" that re-runs the function it was recorded with (a recording runs
    nothing, as CUDA's does). Replaying a training step sets the gradients to None first, as a real
    replay's backward writes its own fresh gradient buffers."""

    def warm_up(self, fn, batch):
        self.warm = True
        return fn(batch)

    def record(self, fn, batch):
        self.graphs[self.key(batch)] = (fn, {name: t.clone() for name, t in batch.items()}, None)

    def replay(self, batch):
        fn, static, _ = self.graphs[self.key(batch)]
        for name, tensor in batch.items():
            static[name].copy_(tensor)
        if hasattr(self, "optimizer"):
            self.optimizer.zero_grad(set_to_none=True)
        return fn(static)


def test_graphed_steps_warm_up_once_then_record_every_new_shape_and_step_the_scheduler(monkeypatch):
    """The step logic of GraphedSteps on the CPU, with stand-in graphs: one eager warm-up step,
    then each new shape (a smaller last batch too) is recorded and replayed; the scheduler counts
    every step; the run is the eager run, loss for loss and weight for weight."""
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)

    class StandInSteps(StandInGraphs, GraphedSteps):
        pass
    device = torch.device("cpu")
    results = []
    for graphed in (False, True):
        cfg, model, data = tiny()
        optimizer, scheduler = make_optimizer(model, cfg.train, 100)
        batches = list(make_loader(data, 20, width_multiple=4)) * 3    # 48 rows: 20, 20, then 8

        def eager(batch):
            return train_step(model, batch, optimizer, scheduler, cfg.train.grad_clip, device)
        step = eager
        if graphed:
            steps = StandInSteps(eager, lambda b: update(model, b, optimizer, cfg.train.grad_clip, device),
                                 optimizer, scheduler, device)
            step = steps.step
        losses = [step(b).item() for b in batches]
        results.append((losses, [p.detach().clone() for p in model.parameters()], scheduler.last_epoch))
        if graphed:
            assert len(steps.graphs) == len({GraphedSteps.key(b) for b in batches}) >= 2
    (eager_losses, eager_weights, eager_count), (graph_losses, graph_weights, graph_count) = results
    assert eager_losses[0] != eager_losses[-1] and graph_count == eager_count == 9
    assert graph_losses == eager_losses
    for a, b in zip(graph_weights, eager_weights):
        assert torch.equal(a, b)


def test_graphed_validation_warms_up_once_then_replays_every_shape(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)

    class StandInForward(StandInGraphs, GraphedForward):
        pass
    cfg, model, data = tiny()
    loader = make_eval_loader(data, 16)
    forward = StandInForward(model, torch.device("cpu"))
    eager = predict_scores(model, loader, torch.device("cpu"))[0]
    graphed = predict_scores(model, loader, torch.device("cpu"), forward=forward)[0]
    assert len(forward.graphs) == len({GraphedForward.key(b) for b in list(loader)[1:]})
    assert torch.equal(graphed, eager)


@cuda
def test_the_cuda_gru_matches_the_cpu_gru_with_gradients():
    torch.manual_seed(0)
    gru = torch.nn.GRU(12, 6, num_layers=2, bidirectional=True, batch_first=True)
    inputs, constant = torch.randn(5, 11, 6), torch.randn(5, 6)
    lengths = torch.tensor([11, 3, 1, 7, 10])
    weights = torch.randn(5, 11, 12)

    def run(device):
        g = gru.to(device)
        g.zero_grad()
        x = inputs.to(device).detach().requires_grad_()        # fresh leaves on either device
        c = constant.to(device).detach().requires_grad_()
        out = bidirectional_gru(g, x, lengths.to(device), c)
        (out * weights.to(device)).sum().backward()
        return [t.detach().cpu() for t in (out, x.grad, c.grad, *[p.grad for p in g.parameters()])]

    expected = run("cpu")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):   # float32 arithmetic, not TF32
        got = run("cuda")
    for a, b in zip(got, expected):    # float32 sums in another order: weight gradients differ by ~1e-5
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@cuda
def test_a_capsnet_training_step_on_cuda_never_waits_for_the_gpu():
    cfg, model, data = tiny_on_cuda()
    device = torch.device("cuda")
    optimizer, scheduler = make_optimizer(model, cfg.train, 10, capturable=True)
    batch = next(iter(make_loader(data, 8, width_multiple=8)))
    train_step(model, batch, optimizer, scheduler, cfg.train.grad_clip, device)   # lazy state set up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_step(model, batch, optimizer, None, cfg.train.grad_clip, device)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
def test_graphed_steps_train_as_eager_steps_do():
    """Same initial weights, same batches (with a smaller last one), no dropout: the graphed run
    (one eager warm-up step, then a graph recorded per new shape and replayed) ends with the weights
    of the eager run."""
    device = torch.device("cuda")
    results = []
    for graphed in (False, True):
        cfg, model, data = tiny_on_cuda()
        optimizer, scheduler = make_optimizer(model, cfg.train, 100, capturable=True)
        batches = list(make_loader(data, 20, width_multiple=8)) * 3    # 48 rows: 20, 20, then 8

        def eager(batch):
            return train_step(model, batch, optimizer, scheduler, cfg.train.grad_clip, device)
        step = eager
        if graphed:
            steps = GraphedSteps(eager, lambda b: update(model, b, optimizer, cfg.train.grad_clip, device),
                                 optimizer, scheduler, device)
            step = steps.step
        losses = [step(b).item() for b in batches]
        if graphed:
            assert len(steps.graphs) == len({GraphedSteps.key(b) for b in batches})   # the last one too
        results.append((losses, [p.detach().cpu() for p in model.parameters()]))
    (eager_losses, eager_weights), (graph_losses, graph_weights) = results
    assert eager_losses[0] != eager_losses[-1]                      # it trained
    torch.testing.assert_close(graph_losses, eager_losses, rtol=1e-4, atol=1e-6)
    for a, b in zip(graph_weights, eager_weights):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@cuda
def test_graphed_validation_forwards_give_the_eager_scores_and_read_the_current_weights():
    cfg, model, data = tiny_on_cuda()
    device = torch.device("cuda")
    loader = make_eval_loader(data, 16)
    shapes = {GraphedForward.key(b) for b in loader}
    forward = GraphedForward(model, device)
    eager = predict_scores(model, loader, device)[0]
    for _ in range(2):                      # the first batch warms up eagerly, then every shape is recorded
        graphed = predict_scores(model, loader, device, forward=forward)[0]
    assert len(forward.graphs) == len(shapes)
    torch.testing.assert_close(graphed, eager, rtol=1e-5, atol=1e-6)
    with torch.no_grad():                   # training changes the weights in place: replays follow
        for p in model.parameters():
            p.mul_(0.9)
    torch.testing.assert_close(predict_scores(model, loader, device, forward=forward)[0],
                               predict_scores(model, loader, device)[0], rtol=1e-5, atol=1e-6)
