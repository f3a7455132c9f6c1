"""Dataset statistics (the paper's Table 2) and a markdown table of ours beside the paper's.

Data in, markdown out: `split_stats` summarises one split's instances, `table2_markdown` renders rows
of {dataset, split, stats, expected}. A count that differs from the paper's is always shown, with
both numbers and the difference (ours - paper); nothing is rounded away or hidden.
"""
from collections import Counter, defaultdict

from common.labels import LABELS

from .tokenizer import tokenize

COUNT_KEYS = LABELS + ("total",)


def split_stats(instances, tokenised_lengths=None):
    """Statistics of one split.

    instances: [Instance] (one per sentence-aspect pair). tokenised_lengths: the token count of each
    instance's sentence, aligned with `instances` (None: tokenise each sentence once with
    data_process.tokenizer.tokenize). Lengths are per sentence: each sentence counts once.
    Returns {positive, negative, neutral, total, sentences, aspects_per_sentence, mean_length,
    max_length}.
    """
    if tokenised_lengths is not None and len(tokenised_lengths) != len(instances):
        raise ValueError(f"{len(tokenised_lengths)} lengths for {len(instances)} instances")
    labels = Counter(i.label for i in instances)
    lengths, aspects = {}, defaultdict(int)
    for position, instance in enumerate(instances):
        aspects[instance.sentence_id] += 1
        if instance.sentence_id not in lengths:
            lengths[instance.sentence_id] = (len(tokenize(instance.text)) if tokenised_lengths is None
                                             else int(tokenised_lengths[position]))
    sentences = len(aspects)
    stats = {name: labels.get(index, 0) for index, name in enumerate(LABELS)}
    stats.update({
        "total": len(instances),
        "sentences": sentences,
        "aspects_per_sentence": round(len(instances) / sentences, 2) if sentences else 0.0,
        "mean_length": round(sum(lengths.values()) / sentences, 2) if sentences else 0.0,
        "max_length": max(lengths.values(), default=0),
    })
    return stats


def dataset_rows(dataset, stats_by_split, expected_counts=None):
    """Rows for table2_markdown from {split: split_stats(...)} and a dataset YAML's expected_counts."""
    expected_counts = expected_counts or {}
    return [{"dataset": dataset, "split": split, "stats": stats, "expected": expected_counts.get(split)}
            for split, stats in stats_by_split.items()]


def compare(stats, expected):
    """{key: ours - paper} for the counts that differ (empty when all agree); total included."""
    if not expected:
        return {}
    paper = dict(expected)
    paper.setdefault("total", sum(paper.get(name, 0) for name in LABELS))
    return {key: stats[key] - paper[key] for key in COUNT_KEYS if key in paper and stats[key] != paper[key]}


def table2_markdown(rows):
    """Markdown table: per dataset and split, our counts beside the paper's, then the rest.

    rows: [{"dataset", "split", "stats": split_stats(...), "expected": {positive, negative, neutral}
    or None}]. A count cell reads `ours` when it equals the paper's and `ours (paper P, +d)` when not;
    the "vs paper" column says `same`, `DIFFERS: ...` or `no paper counts`.
    """
    header = ["dataset", "split", *LABELS, "total", "vs paper", "sentences", "aspects/sentence",
              "mean length", "max length"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        stats, expected = row["stats"], row.get("expected")
        differences = compare(stats, expected)
        cells = [str(row["dataset"]), str(row["split"])]
        for key in COUNT_KEYS:
            if key in differences:
                paper = stats[key] - differences[key]
                cells.append(f"{stats[key]} (paper {paper}, {differences[key]:+d})")
            else:
                cells.append(str(stats[key]))
        if not expected:
            cells.append("no paper counts")
        elif differences:
            cells.append("DIFFERS: " + ", ".join(f"{k} {d:+d}" for k, d in differences.items()))
        else:
            cells.append("same")
        cells += [str(stats["sentences"]), f"{stats['aspects_per_sentence']:.2f}",
                  f"{stats['mean_length']:.2f}", str(stats["max_length"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PAPER_DATASETS = ("mams-atsa", "mams-small-atsa", "restaurant-atsa", "mams-acsa", "mams-small-acsa",
                  "restaurant-acsa")  # the rows of the paper's Table 2


def dataset_stats(data, paths):
    """{split: split_stats} of a dataset's split files as they are (MAMS-small: its train sample;
    no held-out validation, so the counts compare with the paper's)."""
    from .preprocess import read_instances
    instances, _ = read_instances(data, paths, hold_out_val=False)
    return {split: split_stats(items) for split, items in instances.items()}
