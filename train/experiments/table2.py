"""--mode stats: the paper's Table 2 from the raw files, beside the paper's counts; written to the
user's results folder (--results, default <paths.runs>/results). The committed results/table2.md is
refreshed only when asked for: --mode stats --results results."""
from pathlib import Path

from common.io import check_writable_dir, write_text
from data_process.stats import PAPER_DATASETS, dataset_rows, dataset_stats, table2_markdown


def stats_job(names, compose, results=None):
    """(markdown of Table 2 for the datasets `names` (None: the paper's six), the file written);
    compose(name) -> RunConfig; results: the folder table2.md goes to (default <paths.runs>/results)."""
    configs = [compose(name) for name in names or PAPER_DATASETS]
    out = Path(results or Path(configs[0].paths.runs) / "results") / "table2.md"
    check_writable_dir(out.parent, "--results")
    rows = []
    for cfg in configs:
        rows += dataset_rows(cfg.data.name, dataset_stats(cfg.data, cfg.paths), cfg.data.expected_counts)
    table = ("# Table 2: dataset statistics (ours beside the paper's)\n\n"
             "Counts are aspects (conflict dropped); lengths are tokens per sentence. A count that differs\n"
             "from the paper shows both numbers and the difference.\n\n" + table2_markdown(rows))
    write_text(out, table)
    return table, out
