"""MAMS-small: a deterministic sample of the MAMS training split with exact per-class counts.

The paper's MAMS-small (Table 2: ATSA 1089/892/1627, ACSA 1000/1100/1613 positive/negative/neutral)
was never released, so it is re-sampled here. The paper says MAMS-small keeps MAMS's defining
property: every sentence holds at least two aspects with different polarities. Drawing single
aspects would break most sentences apart (a sentence would keep one of its aspects), so the sample
is drawn by whole sentences wherever possible:

1. Group the training instances by sentence; each sentence has a count per class.
2. Put the sentence ids (sorted positions in the file) in a random order drawn with
   `numpy.random.default_rng(seed).permutation`; nothing depends on Python's hash ordering.
3. Walk that order once and take a sentence *whole* when all its aspects fit the remaining per-class
   budget (no class would exceed its target).
4. The pass usually leaves a few instances of one class unfilled (no remaining sentence fits).
   Exchange whole sentences to close the gap: swap one taken sentence for one not taken (or add
   one) when the result still fits and leaves the smallest remainder; repeat while that remainder
   shrinks. Ties: adding beats swapping, then the added sentence earliest in the seeded order,
   then the removed sentence latest in it. Every sentence stays whole.
5. Only if a remainder is still left, fill it from sentences not taken, each contributing just the
   aspects the budget still needs: the sentence that fills most of the remainder first (ties: the
   earlier one in the seeded order), its aspects of a class taken in file order. These are the
   *partial* sentences, the only ones that may lose their mixed polarities.

The class counts are then exactly the targets. A partial sentence may lose its mixed polarities,
so the stats report how many sampled sentences still hold >= 2 aspects of different polarities.
Same instances + same targets + same seed -> the same sample on every machine (numpy's PCG64
generator; no floating point is involved in the choice).

Measured on the MAMS files, seed 0: ATSA 3608 instances from 1397 sentences, ACSA 3713 instances
from 1644 sentences; no partial sentence, so every sampled sentence keeps >= 2 aspects of different
polarities (seeds 0-7 all end with no partial sentence).
"""
from collections import defaultdict

import numpy as np

from common.errors import UserError
from common.labels import LABELS


def sample_train(instances, class_counts, seed):
    """Sample `instances` (one split, in file order) to exactly `class_counts` {label name: n}.

    Returns (sample, stats): the sampled instances in file order, and a dict with `sentences`
    (sentences in the sample), `sentences_whole`, `sentences_partial`, `sentences_mixed` (sample
    sentences with >= 2 aspects of different polarities), `source_sentences`, `instances` and
    `classes` ({label name: count}).
    """
    unknown = sorted(set(class_counts) - set(LABELS))
    if unknown:
        raise UserError(f"train_sample: unknown class {unknown[0]!r} (expected {', '.join(LABELS)})")
    missing = [name for name in LABELS if name not in class_counts]
    if missing:
        raise UserError(f"train_sample: no count for class {missing[0]!r} (give {', '.join(LABELS)})")
    target = np.array([class_counts[name] for name in LABELS], dtype=np.int64)
    if (target < 0).any():
        raise UserError(f"train_sample: counts must be >= 0, got {dict(class_counts)}")

    members = defaultdict(list)  # sentence id -> positions in `instances`
    for position, instance in enumerate(instances):
        members[instance.sentence_id].append(position)
    counts = {sid: np.bincount([instances[p].label for p in pos], minlength=len(LABELS))
              for sid, pos in members.items()}
    available = sum(counts.values(), np.zeros(len(LABELS), dtype=np.int64))
    short = [f"{name} {want} > {have}" for name, want, have in zip(LABELS, target, available) if want > have]
    if short:
        raise UserError(f"train_sample: asks for more instances than the split holds ({'; '.join(short)})")

    ids = sorted(members)
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    remaining = target.copy()
    whole = set()
    for sid in order:
        if not remaining.any():
            break
        if (counts[sid] <= remaining).all():
            whole.add(sid)
            remaining -= counts[sid]

    whole, remaining = _exchange(order, whole, counts, remaining)
    chosen = [p for sid in whole for p in members[sid]]

    partial = set()
    rest = [sid for sid in order if sid not in whole]
    while remaining.any():
        gains = [int(np.minimum(counts[sid], remaining).sum()) for sid in rest]
        best = int(np.argmax(gains))  # first maximum = earliest in the seeded order
        sid = rest.pop(best)
        for label in range(len(LABELS)):
            need = int(min(counts[sid][label], remaining[label]))
            if need:
                chosen += [p for p in members[sid] if instances[p].label == label][:need]
                remaining[label] -= need
        partial.add(sid)

    sample = [instances[p] for p in sorted(chosen)]
    labels_by_sentence = defaultdict(set)
    for instance in sample:
        labels_by_sentence[instance.sentence_id].add(instance.label)
    sampled_counts = np.bincount([i.label for i in sample], minlength=len(LABELS))
    stats = {
        "sentences": len(labels_by_sentence),
        "sentences_whole": len(whole),
        "sentences_partial": len(partial),
        "sentences_mixed": sum(len(labels) > 1 for labels in labels_by_sentence.values()),
        "source_sentences": len(members),
        "instances": len(sample),
        "classes": {name: int(n) for name, n in zip(LABELS, sampled_counts)},
    }
    return sample, stats


def _exchange(order, whole, counts, remaining):
    """Step 4: swap whole sentences (or add one) while the per-class remainder shrinks.

    order: all sentence ids in the seeded order; whole: the ids taken. Among the moves leaving the
    smallest remainder, adding alone beats swapping, then the added sentence earliest in the seeded
    order wins, then the removed sentence latest in it. Sentences are grouped by their class-count
    vectors (few distinct ones), so a step costs little. Returns (set of taken ids, remainder).
    """
    taken, untaken = defaultdict(list), defaultdict(list)  # count vector -> ids in seeded order
    for sid in order:
        (taken if sid in whole else untaken)[tuple(int(n) for n in counts[sid])].append(sid)
    rank = {sid: i for i, sid in enumerate(order)}
    remaining = remaining.copy()
    while remaining.any():
        best = None
        moves = [(None, None)] + [(vector, ids[-1]) for vector, ids in sorted(taken.items()) if ids]
        for out_vector, removed in moves:
            for in_vector, candidates in sorted(untaken.items()):
                if not candidates:
                    continue
                after = remaining - np.array(in_vector)
                if out_vector is not None:
                    after = after + np.array(out_vector)
                if (after < 0).any():
                    continue
                key = (int(after.sum()), removed is not None, rank[candidates[0]],
                       -rank[removed] if removed is not None else 0)
                if best is None or key < best[0]:
                    best = (key, after, out_vector, in_vector)
        if best is None or best[0][0] >= remaining.sum():
            break
        _, remaining, out_vector, in_vector = best
        added = untaken[in_vector].pop(0)
        taken[in_vector] = sorted(taken[in_vector] + [added], key=rank.get)
        if out_vector is not None:
            removed = taken[out_vector].pop()
            untaken[out_vector] = sorted(untaken[out_vector] + [removed], key=rank.get)
    return {sid for ids in taken.values() for sid in ids}, remaining
