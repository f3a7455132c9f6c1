"""CUDA graphs for training steps and validation forwards (train/cuda_graphs.py) and what they rely
on: batch widths rounded up for fewer shapes (src/dataset.py), the sync-free substitutes on CUDA
(src/kernels/, swapped in by train/kernels.py as a default run does), and when they are used. The
tests marked `cuda` need a GPU and are skipped without one (benchmarks/gpu_speed.sh runs them,
results in docs/RESULTS.md)."""
import dataclasses

import pytest
import torch

from conftest import compose_cfg, model_setup, model_tasks, tiny_capsnet
from data_process.fields import length_field
from src.blocks import RNNEncoder
from src.dataset import make_eval_loader, make_loader
from src.kernels.gru import bidirectional_gru
from src.models import MODELS
from train.cuda_graphs import GraphedForward, GraphedSteps, can_use
from train.kernels import use_kernels
from train.trainer import make_optimizer, predict_scores, train_step, update

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny(overrides=()):
    """(cfg, a tiny CapsNet with the fast substitutes, as a default run trains it, its dataset)."""
    cfg = compose_cfg("mams-atsa", overrides=["model.capsule_size=8", "model.dropout=0.0", *overrides])
    model, data = tiny_capsnet(cfg)
    return cfg, use_kernels(model, cfg.train.kernels), data


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
    model.cuda_graph_safe = False                     # a model that does not declare itself safe
    assert not can_use(model, tcfg, cuda_device)


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


def train_both_ways(make, device, steps_class=GraphedSteps, limit=64):
    """Train a fresh (model, train config, batches) from make() eagerly, then through steps_class
    (GraphedSteps or a stand-in); returns [(losses, weights on the CPU, scheduler steps, the steps
    object or None)] for the two runs."""
    results = []
    for graphed in (False, True):
        model, tcfg, batches = make()
        optimizer, scheduler = make_optimizer(model, tcfg, 100, capturable=True)

        def eager(batch):
            return train_step(model, batch, optimizer, scheduler, tcfg.grad_clip, device)
        steps = None
        if graphed:
            steps = steps_class(eager, lambda b: update(model, b, optimizer, tcfg.grad_clip, device),
                                optimizer, scheduler, device, limit)
        losses = [(steps.step if graphed else eager)(b).item() for b in batches]
        results.append((losses, [p.detach().cpu() for p in model.parameters()], scheduler.last_epoch, steps))
    return results


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


def stand_in_runs(monkeypatch, limit):
    """(the batches: 48 tiny rows in batches of 20, 20 and 8, three times over; the eager run and the
    run of GraphedSteps with stand-in graphs and this graph limit, as train_both_ways gives them)."""
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)

    class StandInSteps(StandInGraphs, GraphedSteps):
        pass

    def make():
        cfg, model, data = tiny()
        return model, cfg.train, list(make_loader(data, 20, width_multiple=4)) * 3
    return (make()[2], *train_both_ways(make, torch.device("cpu"), StandInSteps, limit))


@pytest.mark.slow
def test_graphed_steps_warm_up_once_then_record_every_new_shape_and_step_the_scheduler(monkeypatch):
    """The step logic of GraphedSteps on the CPU, with stand-in graphs: one eager warm-up step,
    then each new shape (a smaller last batch too) is recorded and replayed; the scheduler counts
    every step; the run is the eager run, loss for loss and weight for weight."""
    batches, (eager_losses, eager_weights, eager_count, _), (graph_losses, graph_weights, graph_count, steps) = \
        stand_in_runs(monkeypatch, limit=64)
    assert len(steps.graphs) == len({GraphedSteps.key(b) for b in batches}) >= 2   # the last batch's too
    assert graph_count == eager_count == 9 and steps.over_limit == 0
    assert eager_losses[0] != eager_losses[-1] and graph_losses == eager_losses
    for a, b in zip(graph_weights, eager_weights):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_shapes_past_the_graph_limit_train_eagerly_and_the_run_is_unchanged(monkeypatch):
    batches, (eager_losses, eager_weights, _, _), (graph_losses, graph_weights, _, steps) = \
        stand_in_runs(monkeypatch, limit=1)
    first = GraphedSteps.key(batches[1])             # the first batch warms up; the second is recorded
    assert list(steps.graphs) == [first]
    assert steps.over_limit == sum(GraphedSteps.key(b) != first for b in batches[1:]) > 0
    assert graph_losses == eager_losses
    for a, b in zip(graph_weights, eager_weights):
        assert torch.equal(a, b)


def test_graphed_validation_warms_up_once_then_replays_every_shape(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)

    class StandInForward(StandInGraphs, GraphedForward):
        pass
    cfg, model, data = tiny()
    loader = make_eval_loader(data, 16)
    forward = StandInForward(model, torch.device("cpu"), cfg.train.cuda_graph_limit)
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
    def make():
        cfg, model, data = tiny_on_cuda()
        return model, cfg.train, list(make_loader(data, 20, width_multiple=8)) * 3    # 48 rows: 20, 20, then 8
    (eager_losses, eager_weights, _, _), (graph_losses, graph_weights, _, steps) = \
        train_both_ways(make, torch.device("cuda"))
    assert len(steps.graphs) == len({GraphedSteps.key(b) for b in make()[2]})   # the last one too
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
    forward = GraphedForward(model, device, cfg.train.cuda_graph_limit)
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


SAFE_MODEL_TASKS = [(name, task) for name, task in model_tasks() if MODELS[name].cuda_graph_safe]


@cuda
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_cuda_lstm_matches_the_packed_cpu_lstm_with_gradients(bidirectional):
    torch.manual_seed(0)
    encoder = RNNEncoder(6, 5, bidirectional=bidirectional)
    inputs, lengths = torch.randn(5, 11, 6), torch.tensor([11, 3, 1, 7, 0])
    weights = torch.randn(5, 11, encoder.output_size)

    fast = use_kernels(RNNEncoder(6, 5, bidirectional=bidirectional), "fast")
    fast.load_state_dict(encoder.state_dict())

    def run(device, module):
        e = module.to(device)
        e.zero_grad()
        x = inputs.to(device).detach().requires_grad_()
        states, last = e(x, lengths.to(device))
        ((states * weights.to(device)).sum() + (last * last).sum()).backward()
        return [t.detach().cpu() for t in (states, last, x.grad, *[p.grad for p in e.parameters()])]

    expected = run("cpu", encoder)              # the definition: RNNEncoder's packed nn.LSTM
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        got = run("cuda", fast)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def model_batches(name, task):
    """(a model on the GPU, in train mode, no dropout; batches of two shapes: all four sentences, and
    the first three cut to their own longest length)."""
    model, batch, _, cfg = model_setup(name, task, None)
    use_kernels(model, "fast")                # the sync-free substitutes, as a default run trains
    device = torch.device("cuda")
    smaller = {}
    for key, value in batch.items():
        value = value[:3]
        if value.dim() == 2:      # a padded field, cut as the loader cuts it
            value = value[:, :max(int(batch[length_field(key)][:3].max()), 1)]
        smaller[key] = value
    batches = [{k: v.to(device) for k, v in b.items()} for b in (batch, smaller)]
    return model.to(device).train(), batches


@cuda
@pytest.mark.parametrize("name,task", SAFE_MODEL_TASKS)
def test_a_graph_safe_models_training_step_never_waits_for_the_gpu(name, task):
    model, (batch, _) = model_batches(name, task)
    tcfg = compose_cfg("mams-atsa" if task == "atsa" else "mams-acsa").train
    optimizer, scheduler = make_optimizer(model, tcfg, 10, capturable=True)
    device = torch.device("cuda")
    train_step(model, batch, optimizer, scheduler, 5.0, device)       # lazy state set up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_step(model, batch, optimizer, None, 5.0, device)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
@pytest.mark.parametrize("name,task", SAFE_MODEL_TASKS)
def test_a_graph_safe_model_trains_from_graphs_as_it_does_eagerly(name, task):
    tcfg = compose_cfg("mams-atsa" if task == "atsa" else "mams-acsa").train

    def make():
        model, (big, small) = model_batches(name, task)
        return model, tcfg, [big, small] * 3
    (eager_losses, eager_weights, _, _), (graph_losses, graph_weights, _, steps) = \
        train_both_ways(make, torch.device("cuda"))
    assert len(steps.graphs) == 2
    assert eager_losses[0] != eager_losses[-2]                      # it trained
    torch.testing.assert_close(graph_losses, eager_losses, rtol=1e-4, atol=1e-5)
    for a, b in zip(graph_weights, eager_weights):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
