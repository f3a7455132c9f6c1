"""The one entry point: python main.py --mode {download,preprocess,train,test,predict,reproduce,table,...} [options].

Examples:
    python main.py --mode train                                   # capsnet on mams-atsa, seed 0
    python main.py --mode test --model capsnet --dataset mams-acsa
    python main.py --mode predict --text "The decor is not special at all but their food is amazing." \
        --aspect decor --aspect food
    python main.py --mode explain --text "The food was great but the service slow." --aspect service
    python main.py --mode reproduce --jobs 2                      # the paper's Table 3, 5 seeds per cell
    python main.py --mode compare --models capsnet-bert,bert      # is the difference real? (docs/STATISTICS.md)
    python main.py --mode results                                 # docs/RESULTS.md from runs/ and results/
    python main.py --mode serve --checkpoint runs/mams-atsa/capsnet/seed0/checkpoint.pt   # docs/SERVING.md
"""
import argparse

from common.errors import UserError, run_command

MODES = ("download", "preprocess", "train", "test", "predict", "explain", "serve", "report", "stats", "reproduce",
         "table", "compare", "results")
SEED_RANGE = (0, 2**32 - 1)   # a seed is a 32-bit number (numpy's limit)


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # one `error:` line (common.errors), not argparse's usage + message
        raise UserError(message)


def check_args(args):
    """--seed in its range before any work (UserError naming the option); the grid's --seeds and
    --jobs are checked where the grid reads them (train/experiments/grid.py), also before any work."""
    low, high = SEED_RANGE
    if not low <= args.seed <= high:
        raise UserError(f"--seed {args.seed}: out of range (takes {low}..{high})")
    return args


def parse_args(argv=None):
    parser = _Parser(description="Aspect-based sentiment analysis on MAMS (CapsNet and friends).")
    parser.add_argument("--mode", choices=MODES, default="train")
    parser.add_argument("--model", default="capsnet", help="a name from configs/models (default capsnet)")
    parser.add_argument("--dataset", help="a name from configs/datasets (default mams-atsa), or a folder of your "
                        "own data: train and test (optionally val) files, .xml or .jsonl")
    parser.add_argument("--config", help="an experiment YAML merged over the model and dataset configs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set train.epochs=1 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="the training seed, 0..2^32-1 (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--checkpoint", help="test/predict/explain/serve: checkpoint file (default: the run folder's)")
    parser.add_argument("--text", help="predict/explain: a sentence to classify")
    parser.add_argument("--aspect", action="append", default=[],
                        help="predict/explain: an aspect term or category (repeatable)")
    parser.add_argument("--out", help="explain: the heat map's .png file, or a folder for them "
                        "(default: <run folder>/explain/); results: the page (default docs/RESULTS.md)")
    parser.add_argument("--input", help="predict: a JSONL file of {\"text\": ..., \"aspects\": [...]}")
    parser.add_argument("--force", action="store_true", help="preprocess: redo the work even if up to date")
    parser.add_argument("--host", default="127.0.0.1", help="serve: the address to listen on (default 127.0.0.1, "
                        "this machine only; 0.0.0.0 exposes the model to the network, see docs/SERVING.md)")
    parser.add_argument("--port", type=int, default=8000, help="serve: the TCP port (default 8000; 0 picks a free one)")
    grid = parser.add_argument_group("reproduce / table / compare (the paper's Table 3 grid; train/experiments/)")
    grid.add_argument("--models", help="comma-separated models (default: the 16 rows of Table 3); "
                      "compare: the two models A,B")
    grid.add_argument("--datasets", help="comma-separated datasets (default: the 6 columns of Table 3)")
    grid.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per cell (default 5, at most 100)")
    grid.add_argument("--jobs", type=int, default=1, help="runs trained at once, as separate processes "
                      "(default 1, at most 256)")
    grid.add_argument("--backend", choices=("local", "ray"), default="local", help="local processes or Ray tasks")
    grid.add_argument("--address", help="ray: the cluster address HOST:PORT (default: start a local Ray)")
    grid.add_argument("--results", default="results", help="folder of table3.{md,csv,tex,png}; results: the folder "
                      "the page reads (default results)")
    return check_args(parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    from train.config import compose
    if args.mode == "stats":
        from train.experiments.table2 import stats_job
        names = [args.dataset] if args.dataset else None
        print(stats_job(names, lambda name: compose(args.model, name, args.config, args.overrides)), end="")
        return 0
    if args.mode in ("reproduce", "table"):
        from train.experiments.jobs import grid_job
        return grid_job(args.mode, args.models, args.datasets, args.seeds, args.jobs, args.device, args.config,
                        args.overrides, args.backend, args.address, args.results)
    if args.mode == "compare":
        from train.experiments.compare import compare_job
        return compare_job(args.models, args.datasets, args.seeds, args.config, args.overrides)
    cfg = compose(args.model, args.dataset or "mams-atsa", args.config, args.overrides)
    if args.mode == "results":
        from train.experiments.results_page import results_job
        print(results_job(cfg.paths.runs, args.results, args.out or "docs/RESULTS.md", args.seeds, args.config,
                          args.overrides))
        return 0

    if args.mode == "download":
        from data_process.raw_data import download, split_files
        written = download(cfg.data, cfg.paths)
        print(f"{cfg.data.name}: " + (f"downloaded {len(written)} file(s)" if written else "all split files present")
              + f" under {next(iter(split_files(cfg.data, cfg.paths).values())).parent}")
    elif args.mode == "preprocess":
        from train.data import PreparedData
        from train.run import model_inputs
        PreparedData(cfg.data, cfg.paths, model_inputs(cfg), force=args.force)  # with the model's BERT inputs
    elif args.mode == "train":
        from train.run import print_json, train_job
        print_json(train_job(cfg, args.seed, args.device))
    elif args.mode == "test":
        from train.inference.evaluate import test_job
        from train.run import print_json
        print_json(test_job(cfg, args.seed, args.device, args.checkpoint))
    elif args.mode == "report":
        from pathlib import Path

        from common.io import check_writable_dir
        from train.experiments.report import report
        runs = Path(cfg.paths.runs)
        check_writable_dir(runs, "paths.runs")
        print(report(runs, runs / "summary.md"), end="")
    elif args.mode == "serve":
        from pathlib import Path

        from train.inference.evaluate import load_classifier
        from train.inference.serve import bind, need_serve_packages, serve
        from train.run_folder import run_dir
        need_serve_packages()
        sock = bind(args.host, args.port)   # a busy port fails before the model loads
        checkpoint = Path(args.checkpoint) if args.checkpoint else run_dir(cfg, args.seed) / "checkpoint.pt"
        serve(load_classifier(checkpoint, args.device, args.dataset), sock=sock)
    elif args.mode in ("predict", "explain"):
        # the checkpoint alone is enough: no raw or processed data is read (train/inference/api.py)
        from pathlib import Path

        from train.inference.evaluate import load_classifier
        from train.inference.explain import explain_job
        from train.inference.requests import read_requests
        from train.run import print_json
        from train.run_folder import finished_checkpoint, run_dir
        requests = read_requests(args.text, args.aspect, args.input)
        checkpoint = Path(args.checkpoint) if args.checkpoint else finished_checkpoint(run_dir(cfg, args.seed))
        clf = load_classifier(checkpoint, args.device, cfg.data.name if args.dataset else None)
        if args.mode == "predict":
            results = clf.predict_requests(requests)
        else:
            results = explain_job(clf, requests, args.out, checkpoint.parent / "explain")
        for result in results:
            print_json(result)
    return 0


if __name__ == "__main__":
    run_command(main)
