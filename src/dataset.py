"""ABSADataset over the processed arrays, and DataLoaders whose batches are trimmed to their
longest real length (a batch of 12-token sentences is 12 wide, not the split's maximum).

A split is a few MB of integer arrays, so on a GPU it is moved there once (`ABSADataset.to`) and
batches are cut on the device: no per-batch host-to-device copy. Batch widths come from a host copy
of the lengths, so cutting a batch never waits for the device."""
import functools
import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from data_process.fields import length_field

SMALL_INTS = (torch.int32, torch.int16, torch.uint8)


def _widened(tensor):
    return tensor.long() if tensor.dtype in SMALL_INTS else tensor


class ABSADataset(Dataset):
    """The fields a model asks for (plus label and their length fields) of one split."""

    def __init__(self, arrays, fields, limit=None):
        missing = (set(fields) | {"label"}) - set(arrays)
        # every padded (N, T) field is trimmed per batch to the longest real length of its row group
        self.length_of = {} if missing else {f: length_field(f) for f in fields if arrays[f].ndim == 2}
        keep = set(fields) | {"label"} | set(self.length_of.values())
        missing = keep - set(arrays)
        if missing:
            raise KeyError(f"processed arrays lack the fields {sorted(missing)}")
        n = len(arrays["label"]) if limit is None else min(int(limit), len(arrays["label"]))
        # small int types widened to int64 once here, so batches are cut without a conversion
        self.arrays = {k: _widened(torch.from_numpy(np.ascontiguousarray(arrays[k][:n]))) for k in keep}
        self.host_lengths = {k: v for k, v in self.arrays.items() if k in set(self.length_of.values())}
        self.fields = tuple(fields)

    def to(self, device):
        """Keep the split's arrays on `device`; returns self."""
        self.arrays = {k: v.to(device) for k, v in self.arrays.items()}
        return self

    def __len__(self):
        return len(self.arrays["label"])

    def __getitem__(self, index):
        return index

    def lengths(self):
        """Real lengths of the first (main) input field, for length bucketing."""
        return self.host_lengths[length_field(self.fields[0])].numpy()

    def collate(self, indices, width_multiple=1):
        """The batch of these rows; each padded field cut to its longest real length, rounded up to
        a multiple of `width_multiple` (fewer distinct shapes, for CUDA graphs)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        widths = {}
        for name, lengths in self.host_lengths.items():
            longest = max(int(lengths.index_select(0, idx).max()), 1)
            widths[name] = math.ceil(longest / width_multiple) * width_multiple
        device = self.arrays["label"].device
        if device.type == "cuda":   # from pinned memory without waiting: the host runs ahead of the GPU
            idx = idx.pin_memory().to(device, non_blocking=True)
        batch = {}
        for name, array in self.arrays.items():
            rows = array.index_select(0, idx)
            if name in self.length_of:
                rows = rows[:, :widths[self.length_of[name]]]
            batch[name] = rows
        return batch


class BucketBatchSampler(Sampler):
    """Shuffled batches of similar lengths: shuffle, cut into chunks of `chunk` batches, sort each
    chunk by length, batch it, then shuffle the batch order. The generator fixes the order."""

    def __init__(self, lengths, batch_size, chunk, generator):
        self.lengths, self.batch_size, self.chunk, self.generator = lengths, batch_size, chunk, generator

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).numpy()
        span = self.batch_size * self.chunk
        batches = []
        for start in range(0, len(order), span):
            piece = order[start:start + span]
            piece = piece[np.argsort(self.lengths[piece], kind="stable")]
            batches += [piece[i:i + self.batch_size].tolist() for i in range(0, len(piece), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]

    def __len__(self):
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def make_loader(dataset, batch_size, shuffle=False, seed=0, bucket_chunk=None, width_multiple=1):
    """Training loaders shuffle with a seeded generator (bucketed by length when bucket_chunk is set);
    evaluation loaders keep the file order. Batch widths round up to a multiple of width_multiple."""
    collate = functools.partial(dataset.collate, width_multiple=width_multiple)
    if shuffle:
        generator = torch.Generator().manual_seed(seed)
        if bucket_chunk:
            sampler = BucketBatchSampler(dataset.lengths(), batch_size, bucket_chunk, generator)
            return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=collate)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)


class LengthSortedBatches(list):
    """Evaluation batches: the dataset's indices sorted by length (stable) and cut every batch_size,
    so a batch is barely wider than its sentences (about half the work of file order on unsorted
    text). `order[k]` is the dataset index of the k-th instance they yield (predict_scores puts
    results back in dataset order with it). Exact for the padding-invariant models."""

    def __init__(self, lengths, batch_size):
        self.order = torch.from_numpy(np.argsort(lengths, kind="stable"))
        super().__init__(self.order[i:i + batch_size].tolist() for i in range(0, len(self.order), batch_size))


def make_eval_loader(dataset, batch_size):
    """The evaluation / inference loader: batches of similar lengths (LengthSortedBatches)."""
    return DataLoader(dataset, batch_sampler=LengthSortedBatches(dataset.lengths(), batch_size),
                      collate_fn=dataset.collate)
