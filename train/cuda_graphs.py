"""Training steps replayed from CUDA graphs.

A training step of a small model is hundreds of tiny kernels; launched one by one from Python, the
GPU spends most of the step waiting for the host. `GraphedSteps` records a whole step (forward, loss,
backward, gradient clipping, the Adam update) as one CUDA graph per batch shape and replays it: one
launch a step. Batches are cut to widths rounded up to a multiple of `train.graph_width_multiple`,
which changes nothing for a padding-invariant model and leaves an epoch a handful of shapes.

- The first full-size batch of a shape is an ordinary (eager) step, run on a side stream as CUDA
  graphs ask; the graph is then recorded without running, and replays do every later step of that
  shape. Smaller batches (an epoch's last) stay eager.
- Each graph keeps its own memory pool: its activations and the gradients its backward pass writes.
  The parameters and the optimiser state (capturable Adam) are shared by every graph and by the eager
  steps, so they are one training run.
- Used only where it computes what the eager step computes (`can_use`): on CUDA, for a model that
  declares `cuda_graph_safe` (no host synchronisation or data-dependent shape in its step), at a
  constant learning rate (a graph keeps the rate it was recorded with), without bf16 autocast.
  Dropout draws from the seeded CUDA generator, so a seed fixes a run as before; it is not the eager
  run's sequence of masks.
"""
import torch


def can_use(model, tcfg, device):
    """Whether this run's training steps may be replayed from CUDA graphs."""
    return (device.type == "cuda" and tcfg.cuda_graphs and model.cuda_graph_safe
            and tcfg.warmup_ratio == 0 and not tcfg.amp_bf16)


class GraphedSteps:
    """step(batch) -> loss tensor: zero the gradients, `update(batch)` (forward, loss, backward,
    clipping, optimiser step; returns the loss), step the scheduler; from a graph per batch shape
    where it can."""

    def __init__(self, update, optimizer, scheduler, batch_size, device):
        self.update, self.optimizer, self.scheduler = update, optimizer, scheduler
        self.batch_size, self.device = batch_size, device
        self.graphs = {}          # shape key -> (graph, static batch, static loss)
        self.side = torch.cuda.Stream(device)

    def step(self, batch):
        key = tuple((name, tuple(t.shape)) for name, t in sorted(batch.items()))
        entry = self.graphs.get(key)
        if entry is None:
            if len(batch["label"]) != self.batch_size:
                return self._eager(batch)
            loss = self._eager_on_side_stream(batch)
            self.graphs[key] = self._record(batch)
            return loss
        graph, static, loss = entry
        for name, tensor in batch.items():
            static[name].copy_(tensor)
        graph.replay()
        self._scheduler_step()
        return loss

    def _scheduler_step(self):
        if self.scheduler is not None:
            self.scheduler.step()     # a constant rate (can_use); it still counts the steps

    def _eager(self, batch):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.update(batch)
        self._scheduler_step()
        return loss

    def _eager_on_side_stream(self, batch):
        current = torch.cuda.current_stream(self.device)
        self.side.wait_stream(current)
        with torch.cuda.stream(self.side):
            loss = self._eager(batch)
        current.wait_stream(self.side)
        return loss

    def _record(self, batch):
        """Record one step over static copies of the batch's tensors (recording runs nothing)."""
        static = {name: tensor.clone() for name, tensor in batch.items()}
        self.optimizer.zero_grad(set_to_none=True)   # the graph's backward allocates its own gradients
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss = self.update(static)
        return graph, static, loss
