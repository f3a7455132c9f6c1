"""Training steps and validation forwards replayed from CUDA graphs.

A training step of a small model is hundreds of tiny kernels; launched one by one from Python, the
GPU spends most of the step waiting for the host. `GraphedSteps` records a whole step (forward, loss,
backward, gradient clipping, the Adam update) as one CUDA graph per batch shape and replays it: one
launch a step. Batches are cut to widths rounded up to a multiple of `train.graph_width_multiple`,
which changes nothing for a padding-invariant model and leaves an epoch a handful of shapes.

- The very first call runs eagerly, on a side stream, as CUDA graphs ask of the warm-up (it sets up
  the lazily made state: the optimiser's, cuBLAS's, the autograd engine's). From then on a batch of
  a new shape (an epoch's smaller last batch too) is recorded (which runs nothing) and replayed, and
  every later batch of that shape is a replay.
- `GraphedForward` does the same for the validation passes (eval mode, no gradients).
- Each keeps at most `limit` graphs (`train.cuda_graph_limit`): a batch of a further shape runs
  eagerly, so text of many lengths cannot fill the GPU with graphs.
- Recording skips what `torch.cuda.graph` does first to give a graph the most memory (wait for the
  device, empty the allocator's device and pinned-host caches): every new shape would otherwise
  stall the GPU and make the next batches allocate afresh.
- Each graph keeps its own memory pool: its activations and the gradients its backward pass writes.
  The parameters and the optimiser state (capturable Adam) are shared by every graph and by the eager
  step, so they are one training run, and a validation replay reads the current weights.
- Used only where it computes what the eager step computes (`can_use`): on CUDA, for a model that
  declares `cuda_graph_safe` (no host synchronisation or data-dependent shape in its step), at a
  constant learning rate (a graph keeps the rate it was recorded with), without bf16 autocast, with
  the fast substitutes (`train.kernels: fast`, train/kernels.py: src/kernels' RNNs need no lengths
  on the host; the readable modules' packed RNNs do).
  Dropout draws from the seeded CUDA generator, so a seed fixes a run as before; it is not the eager
  run's sequence of masks.
"""
import time

import torch


def can_use(model, tcfg, device):
    """Whether this run's training steps may be replayed from CUDA graphs."""
    return (device.type == "cuda" and tcfg.cuda_graphs and model.cuda_graph_safe
            and tcfg.warmup_ratio == 0 and not tcfg.amp_bf16 and tcfg.kernels == "fast")


class _Graphs:
    """CUDA graphs of one function of a batch, one per batch shape."""

    def __init__(self, device, limit):
        self.device, self.limit = device, limit
        self.graphs = {}              # shape key -> (graph, static batch, static output)
        self.side = torch.cuda.Stream(device)       # the warm-up's
        self.capture = torch.cuda.Stream(device)    # recordings'
        self.warm = False             # whether the eager warm-up has run
        self.record_seconds = 0.0     # host time spent recording
        self.over_limit = 0           # batches run eagerly for want of a graph within the limit

    @staticmethod
    def key(batch):
        return tuple((name, tuple(t.shape)) for name, t in sorted(batch.items()))

    def graphable(self, batch):
        """Whether the batch's shape has a graph or may have one (within the limit); counts the
        batches that may not (`over_limit`)."""
        if self.key(batch) in self.graphs or len(self.graphs) < self.limit:
            return True
        self.over_limit += 1
        return False

    def warm_up(self, fn, batch):
        """fn(batch) eagerly on a side stream, as CUDA graphs ask of the warm-up before recording."""
        current = torch.cuda.current_stream(self.device)
        self.side.wait_stream(current)
        with torch.cuda.stream(self.side):
            out = fn(batch)
        current.wait_stream(self.side)
        self.warm = True
        return out

    def record(self, fn, batch):
        """Record fn over static copies of the batch's tensors (recording runs nothing)."""
        start = time.perf_counter()
        static = {name: tensor.clone() for name, tensor in batch.items()}
        graph = torch.cuda.CUDAGraph()
        self.capture.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.capture):
            graph.capture_begin()
            try:
                out = fn(static)
            finally:
                graph.capture_end()
        self.graphs[self.key(batch)] = (graph, static, out)
        self.record_seconds += time.perf_counter() - start

    def run(self, eager, recorded, batch):
        """(output, replayed): eager(batch) for the warm-up and for a shape past the limit; else
        recorded(batch) from the shape's graph, recorded first (after `before_recording`) if new."""
        if not self.warm:
            return self.warm_up(eager, batch), False
        if not self.graphable(batch):
            return eager(batch), False
        if self.key(batch) not in self.graphs:
            self.before_recording()
            self.record(recorded, batch)
        return self.replay(batch), True

    def before_recording(self):
        """What must happen before each recording (nothing here; GraphedSteps clears the gradients)."""

    def replay(self, batch):
        """fn(batch) from its shape's graph: the static output."""
        graph, static, out = self.graphs[self.key(batch)]
        for name, tensor in batch.items():
            static[name].copy_(tensor)
        graph.replay()
        return out


class GraphedSteps(_Graphs):
    """step(batch) -> loss, as `eager(batch)` gives it (the trainer's train_step: zero the gradients,
    `update(batch)`, step the scheduler), from a graph of `update` (forward, loss, backward,
    clipping, optimiser step; returns the detached loss) per batch shape, up to `limit` shapes."""

    def __init__(self, eager, update, optimizer, scheduler, device, limit):
        super().__init__(device, limit)
        self.eager, self.update, self.optimizer, self.scheduler = eager, update, optimizer, scheduler

    def before_recording(self):
        self.optimizer.zero_grad(set_to_none=True)   # the graph's backward allocates its own gradients

    def step(self, batch):
        loss, replayed = self.run(self.eager, self.update, batch)
        if replayed and self.scheduler is not None:
            self.scheduler.step()     # a constant rate (can_use); it still counts the steps
        return loss


class GraphedForward(_Graphs):
    """forward(batch) -> model(batch) for evaluation (call it in eval mode under no_grad), from a
    graph per batch shape, up to `limit` shapes."""

    def __init__(self, model, device, limit):
        super().__init__(device, limit)
        self.model = model

    def __call__(self, batch):
        scores, replayed = self.run(self.model, self.model, batch)
        return scores.clone() if replayed else scores     # the next replay overwrites the static output
