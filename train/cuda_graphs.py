"""Training steps and validation forwards replayed from CUDA graphs.

A training step of a small model is hundreds of tiny kernels; launched one by one from Python, the
GPU spends most of the step waiting for the host. `GraphedSteps` records a whole step (forward, loss,
backward, gradient clipping, the Adam update) as one CUDA graph per batch shape and replays it: one
launch a step. Batches are cut to widths rounded up to a multiple of `train.graph_width_multiple`,
which changes nothing for a padding-invariant model and leaves an epoch a handful of shapes.

- The first full-size batch of a shape is an ordinary (eager) step, run on a side stream as CUDA
  graphs ask; the graph is then recorded without running, and replays do every later step of that
  shape. Smaller batches (an epoch's last) stay eager.
- `GraphedForward` does the same for the validation pass (eval mode, no gradients): its batches
  are the same every epoch, so a shape's first batch runs eagerly and its second is recorded.
- Each graph keeps its own memory pool: its activations and the gradients its backward pass writes.
  The parameters and the optimiser state (capturable Adam) are shared by every graph and by the eager
  steps, so they are one training run, and a validation replay reads the current weights.
- Used only where it computes what the eager step computes (`can_use`): on CUDA, for a model that
  declares `cuda_graph_safe` (no host synchronisation or data-dependent shape in its step), at a
  constant learning rate (a graph keeps the rate it was recorded with), without bf16 autocast.
  Dropout draws from the seeded CUDA generator, so a seed fixes a run as before; it is not the eager
  run's sequence of masks.
"""
import time

import torch


def can_use(model, tcfg, device):
    """Whether this run's training steps may be replayed from CUDA graphs."""
    return (device.type == "cuda" and tcfg.cuda_graphs and model.cuda_graph_safe
            and tcfg.warmup_ratio == 0 and not tcfg.amp_bf16)


class _Graphs:
    """CUDA graphs of one function of a batch, one per batch shape."""

    def __init__(self, device):
        self.device = device
        self.graphs = {}              # shape key -> (graph, static batch, static output)
        self.side = torch.cuda.Stream(device)
        self.record_seconds = 0.0     # host time spent recording

    @staticmethod
    def key(batch):
        return tuple((name, tuple(t.shape)) for name, t in sorted(batch.items()))

    def on_side_stream(self, fn, batch):
        """fn(batch) eagerly on a side stream, as CUDA graphs ask of the warm-up before recording."""
        current = torch.cuda.current_stream(self.device)
        self.side.wait_stream(current)
        with torch.cuda.stream(self.side):
            out = fn(batch)
        current.wait_stream(self.side)
        return out

    def record(self, fn, batch):
        """Record fn over static copies of the batch's tensors (recording runs nothing)."""
        start = time.perf_counter()
        static = {name: tensor.clone() for name, tensor in batch.items()}
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn(static)
        self.graphs[self.key(batch)] = (graph, static, out)
        self.record_seconds += time.perf_counter() - start

    def replay(self, batch):
        """fn(batch) from its shape's graph (None when there is none): the static output."""
        entry = self.graphs.get(self.key(batch))
        if entry is None:
            return None
        graph, static, out = entry
        for name, tensor in batch.items():
            static[name].copy_(tensor)
        graph.replay()
        return out


class GraphedSteps(_Graphs):
    """step(batch) -> loss, as `eager(batch)` gives it (the trainer's train_step: zero the gradients,
    `update(batch)`, step the scheduler), from a graph of `update` (forward, loss, backward,
    clipping, optimiser step; returns the detached loss) per full-size batch shape."""

    def __init__(self, eager, update, optimizer, scheduler, batch_size, device):
        super().__init__(device)
        self.eager, self.update, self.optimizer, self.scheduler = eager, update, optimizer, scheduler
        self.batch_size = batch_size

    def step(self, batch):
        loss = self.replay(batch)
        if loss is not None:
            if self.scheduler is not None:
                self.scheduler.step()     # a constant rate (can_use); it still counts the steps
            return loss
        if len(batch["label"]) != self.batch_size:
            return self.eager(batch)
        loss = self.on_side_stream(self.eager, batch)
        self.optimizer.zero_grad(set_to_none=True)   # the graph's backward allocates its own gradients
        self.record(self.update, batch)
        return loss


class GraphedForward(_Graphs):
    """forward(batch) -> model(batch) for evaluation (call it in eval mode under no_grad), from a
    graph per batch shape once the shape comes back."""

    def __init__(self, model, device):
        super().__init__(device)
        self.model, self.seen = model, set()

    def __call__(self, batch):
        scores = self.replay(batch)
        if scores is not None:
            return scores.clone()     # the next replay overwrites the static output
        key = self.key(batch)
        if key not in self.seen:
            self.seen.add(key)
            return self.on_side_stream(self.model, batch)
        self.record(self.model, batch)
        return self.replay(batch).clone()
