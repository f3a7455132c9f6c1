"""The one training / evaluation loop for every model.

Adam, gradient-norm clipping, optional linear warm-up, evaluation on the validation set after every
epoch (and every `train.eval_every_steps` optimiser steps when that is set). Model selection: the
evaluation with the best validation `train.select_metric` (accuracy or macro_f1: highest; loss:
lowest), ties broken by the higher validation macro-F1, then by the earlier evaluation; those weights
are the checkpoint that is tested.
"""
import contextlib
import time

import torch
from tqdm import tqdm

from data_process.fields import length_field

from .cuda_graphs import GraphedForward, GraphedSteps, can_use
from .metrics import classification_metrics
from .resume import loader_generator, rng_state, set_rng_state
from .runtime import training_bf16


def move(batch, device):
    """The batch on `device` (a no-op for tensors already there, e.g. from a device-resident split)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def autocast(device, enabled):
    """bf16 autocast on `device` (CUDA or CPU) when `enabled` (runtime.training_bf16 decides), else float32."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_scores(model, loader, device, bf16=False, forward=None):
    """(scores (N, C) float32 on CPU, labels (N,)) over a loader, in eval mode, in dataset order (a
    loader of LengthSortedBatches yields another order; its results are put back). `forward`, if
    given, computes model(batch) (a GraphedForward)."""
    model.eval()
    forward = forward or model
    scores, labels = [], []
    for batch in loader:
        batch = move(batch, device)
        with autocast(device, bf16):
            out = forward(batch)
        scores.append(out.float())
        labels.append(batch["label"])
    # one copy to the host at the end: a GPU pass never waits for the host between batches
    scores, labels = torch.cat(scores).cpu(), torch.cat(labels).cpu()
    order = getattr(loader.batch_sampler, "order", None)
    if order is None:
        return scores, labels
    return _unsort(scores, order), _unsort(labels, order)


def _unsort(values, order):
    """values[k] belongs to dataset index order[k]: back to dataset order."""
    restored = torch.empty_like(values)
    restored[order] = values
    return restored


def evaluate(model, loader, device, bf16=False, forward=None):
    scores, labels = predict_scores(model, loader, device, bf16, forward)
    metrics = classification_metrics(labels.numpy(), scores.argmax(-1).numpy())
    metrics["loss"] = round(float(model.loss(scores, labels)), 5)
    return metrics


def make_optimizer(model, tcfg, total_steps, capturable=False):
    """Adam over the model's parameter groups, as torch's fused kernel: one pass over each parameter
    instead of a dozen element-wise operations (faster on the CPU; the same update, rounded differently
    in the last bit). On CUDA `capturable` keeps its step count on the device, so CUDA graphs can
    record it."""
    on_cuda = next(model.parameters()).is_cuda
    optimizer = torch.optim.Adam(model.parameter_groups(tcfg.lr), lr=tcfg.lr, weight_decay=tcfg.weight_decay,
                                 fused=True, capturable=capturable and on_cuda)
    warmup = int(tcfg.warmup_ratio * total_steps)

    def factor(step):  # linear warm-up, then linear decay to zero; constant when warmup is 0
        if warmup == 0:
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def is_better(current, best, metric):
    """Higher is better for accuracy / macro_f1, lower for loss; ties go to macro-F1, then to the earlier."""
    if best is None:
        return True
    sign = -1.0 if metric == "loss" else 1.0
    return (sign * current[metric], current["macro_f1"]) > (sign * best[metric], best["macro_f1"])


def train_step(model, batch, optimizer, scheduler, grad_clip, device, bf16=False):
    """One optimiser step on a batch already on `device`; returns the loss tensor."""
    optimizer.zero_grad(set_to_none=True)
    loss = update(model, batch, optimizer, grad_clip, device, bf16)
    if scheduler is not None:
        scheduler.step()
    return loss


def update(model, batch, optimizer, grad_clip, device, bf16=False):
    """Forward, loss, backward, gradient clipping and the optimiser step, onto gradients that are
    None (train_step; the body a CUDA graph records); returns the loss (detached)."""
    with autocast(device, bf16):
        scores = model(batch)
    loss = model.loss(scores.float(), batch["label"])
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach()     # holds nothing of the autograd graph


# The loop's variables a resumed training takes over (train/resume.py).
LOOP_STATE = ("history", "best", "step", "samples", "tokens", "evaluations", "train_seconds", "wall_seconds",
              "window_steps", "carried_loss", "resumed")


def fit(model, train_loader, val_loader, tcfg, device, on_best, log=print, writer=None, resume=None, on_epoch=None):
    """Train with the TrainConfig `tcfg`; validate after every epoch (and every
    tcfg.eval_every_steps steps when set); call on_best(epoch, val_metrics) whenever validation
    improves. `writer` (optional, anything with add_scalar(tag, value, step), e.g. a TensorBoard
    SummaryWriter) gets train/loss (mean since the last point) and train/lr every tcfg.log_every
    steps, and val/loss, val/accuracy, val/macro_f1 at every evaluation.
    The loss is summed on the device and read back only at logging points and epoch ends, so a
    GPU step never waits for the host. On CUDA, steps are replayed from CUDA graphs where
    train/cuda_graphs.py's can_use allows, and so are validation forwards (timing's cuda_graphs:
    how many were recorded, and the host time it took).
    `on_epoch(epoch, state)` gets, after every epoch, the state a stopped training resumes from
    (train/resume.py); `resume` is such a state: the loop goes on after its epoch as if never stopped.
    Returns (per-epoch history, best validation metrics, timing)."""
    epochs, max_steps, eval_every = tcfg.epochs, tcfg.max_steps, tcfg.eval_every_steps
    metric = tcfg.select_metric
    total = epochs * len(train_loader) if not max_steps else min(max_steps, epochs * len(train_loader))
    graphed = can_use(model, tcfg, device)
    optimizer, scheduler = make_optimizer(model, tcfg, total, capturable=graphed)
    bf16 = training_bf16(tcfg, device)

    def eager_step(batch):
        return train_step(model, batch, optimizer, scheduler, tcfg.grad_clip, device, bf16)
    step_on, forward = eager_step, None
    if graphed:
        def body(batch):
            return update(model, batch, optimizer, tcfg.grad_clip, device)
        graphs = GraphedSteps(eager_step, body, optimizer, scheduler, device, tcfg.cuda_graph_limit)
        step_on, forward = graphs.step, GraphedForward(model, device, tcfg.cuda_graph_limit)
        log("training steps are replayed from CUDA graphs (train.cuda_graphs)")
    tokens_field = length_field(model.input_fields()[0])
    history, step, samples, tokens, evaluations = [], 0, 0, 0, 0
    best = None
    train_seconds, earlier_seconds, resumed = 0.0, 0.0, []
    earlier_cpu = 0.0   # CPU time of the epochs before a resume; None: a state saved before it was kept
    window_steps, carried_loss = 0, 0.0   # train/loss window: steps and loss from earlier epochs
    first_epoch = 1
    generator = loader_generator(train_loader)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        (history, best, step, samples, tokens, evaluations, train_seconds, earlier_seconds, window_steps,
         carried_loss, resumed) = (resume["loop"][k] for k in LOOP_STATE)
        resumed = [*resumed, resume["epoch"]]
        earlier_cpu = resume["loop"].get("cpu_seconds")
        set_rng_state(resume["rng"])
        if generator is not None:
            generator.set_state(resume["generator"])
        first_epoch = resume["epoch"] + 1
        log(f"resumed after epoch {resume['epoch']} (best validation {metric} so far: {best[metric]:.2f})")
    start = time.perf_counter() - earlier_seconds
    cpu_start = time.process_time()   # the process's CPU time: every thread, user and system

    def cpu_seconds():
        return None if earlier_cpu is None else earlier_cpu + time.process_time() - cpu_start

    def validate(epoch):
        nonlocal best, evaluations
        evaluations += 1
        val = dict(evaluate(model, val_loader, device, bf16, forward), epoch=epoch, step=step)
        if writer is not None:
            for name in ("loss", "accuracy", "macro_f1"):
                writer.add_scalar(f"val/{name}", val[name], step)
        improved = is_better(val, best, metric)
        if improved:
            best = val
            on_best(epoch, val)
        model.train()
        return val, improved

    for epoch in range(first_epoch, epochs + 1):
        model.train()
        loss_total, batches, epoch_train = torch.zeros((), device=device), 0, 0.0
        token_total = torch.zeros((), dtype=torch.long, device=device)
        window_start = 0.0   # the epoch's loss sum at its last logging point
        mark = time.perf_counter()
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=None)
        for batch in bar:
            samples += len(batch["label"])
            batch = move(batch, device)
            token_total += batch[tokens_field].sum()
            loss_total += step_on(batch)     # a detached loss
            step += 1
            batches += 1
            window_steps += 1    # steps since the last logging point, across epochs
            if step % tcfg.log_every == 0:
                loss_sum = loss_total.item()
                bar.set_postfix(loss=f"{loss_sum / batches:.4f}")
                if writer is not None:
                    window_loss = carried_loss + loss_sum - window_start
                    writer.add_scalar("train/loss", window_loss / window_steps, step)
                    writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
                window_start, window_steps, carried_loss = loss_sum, 0, 0.0
            if max_steps and step >= max_steps:
                break
            if eval_every and step % eval_every == 0 and batches < len(train_loader):
                epoch_train += time.perf_counter() - mark
                validate(epoch)
                mark = time.perf_counter()
        loss_sum = loss_total.item()   # waits for the epoch's last step
        carried_loss += loss_sum - window_start   # the steps after the last logging point
        tokens += int(token_total)
        epoch_train += time.perf_counter() - mark
        train_seconds += epoch_train
        val, improved = validate(epoch)
        record = {"epoch": epoch, "step": step, "train_loss": round(loss_sum / max(1, batches), 5),
                  "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                  "best_val_" + metric: best[metric], "seconds": round(time.perf_counter() - start, 1)}
        history.append(record)
        log(f"epoch {epoch}: train loss {record['train_loss']:.4f}  val loss {val['loss']:.4f}  "
            f"val acc {val['accuracy']:.2f}  val macro-F1 {val['macro_f1']:.2f}  "
            f"({record['seconds']:.0f} s){'  *best' if improved else ''}")
        if on_epoch is not None:
            loop = (history, best, step, samples, tokens, evaluations, train_seconds, time.perf_counter() - start,
                    window_steps, carried_loss, resumed)
            on_epoch(epoch, {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(),
                             "loop": dict(zip(LOOP_STATE, loop), cpu_seconds=cpu_seconds()),
                             "rng": rng_state(), "generator": None if generator is None else generator.get_state()})
        if max_steps and step >= max_steps:
            break
    wall = time.perf_counter() - start
    timing = {"wall_seconds": round(wall, 1), "train_seconds": round(train_seconds, 1), "steps": step,
              "validations": evaluations,
              "train_samples_per_second": round(samples / max(train_seconds, 1e-9), 1),
              "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1)}
    if cpu_seconds() is not None:
        timing["cpu_seconds"] = round(cpu_seconds(), 1)
    if resumed:
        timing["resumed_after_epochs"] = resumed   # the run was stopped and went on after these epochs
    if graphed:
        timing["cuda_graphs"] = {"training": len(graphs.graphs), "validation": len(forward.graphs),
                                 "record_seconds": round(graphs.record_seconds + forward.record_seconds, 2),
                                 "eager_over_limit": graphs.over_limit + forward.over_limit}
    return history, best, timing
