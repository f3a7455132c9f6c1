"""--mode stats: the paper's Table 2 from the raw files, beside the paper's counts; written to
results/table2.md."""
from pathlib import Path

from common.io import write_text
from data_process.stats import PAPER_DATASETS, dataset_rows, dataset_stats, table2_markdown

RESULTS = Path("results")


def stats_job(names, compose):
    """Markdown of Table 2 for the datasets `names` (None: the paper's six); compose(name) -> RunConfig."""
    rows = []
    for name in names or PAPER_DATASETS:
        cfg = compose(name)
        rows += dataset_rows(cfg.data.name, dataset_stats(cfg.data, cfg.paths), cfg.data.expected_counts)
    table = ("# Table 2: dataset statistics (ours beside the paper's)\n\n"
             "Counts are aspects (conflict dropped); lengths are tokens per sentence. A count that differs\n"
             "from the paper shows both numbers and the difference.\n\n" + table2_markdown(rows))
    write_text(RESULTS / "table2.md", table)
    return table
