"""The one entry point: python main.py --mode {download,preprocess,train,test,predict,reproduce,table,...} [options].

Examples:
    python main.py --mode train                                   # capsnet on mams-atsa, seed 0
    python main.py --mode test --model capsnet --dataset mams-acsa
    python main.py --mode predict --text "The decor is not special at all but their food is amazing." \
        --aspect decor --aspect food
    python main.py --mode explain --text "The food was great but the service slow." --aspect service
    python main.py --mode reproduce --jobs 2                      # the paper's Table 3, 5 seeds per cell
    python main.py --mode compare --models capsnet-bert,bert      # is the difference real? (docs/STATISTICS.md)
    python main.py --mode results                                 # the results page: your runs + the published ones
    python main.py --mode publish                                 # finished runs -> results/ and docs/RESULTS.md
    python main.py --mode export --out my-capsnet                 # a run as a pretrained folder (safetensors, card)
    python main.py --mode serve --checkpoint runs/mams-atsa/capsnet/seed0/checkpoint.pt   # docs/SERVING.md
"""
import argparse
import sys
from pathlib import Path

from common.errors import UserError, run_command

MODES = ("download", "preprocess", "train", "test", "predict", "explain", "serve", "report", "stats", "reproduce",
         "table", "compare", "results", "publish", "export")
SEED_RANGE = (0, 2**32 - 1)   # a seed is a 32-bit number (numpy's limit)
DEFAULT_MODEL = "capsnet"


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # one `error:` line (common.errors), not argparse's usage + message
        raise UserError(message)


GRID_MODES = ("reproduce", "table", "compare", "publish", "results")
ANSWER_MODES = ("predict", "explain", "serve")
# The modes that read each option (by its dest); given to any other mode, it is refused rather than ignored.
OPTION_MODES = {
    "checkpoint": ("test", *ANSWER_MODES, "export"),
    "text": ("predict", "explain"), "aspect": ("predict", "explain"), "input": ("predict", "explain"),
    "out": ("explain", "results", "export"),
    "force": ("preprocess", "publish"),
    "overwrite": ("train", "export"),
    "host": ("serve",), "port": ("serve",), "allow_hosts": ("serve",),
    # table takes the grid options of reproduce, so that a reproduce command shows its table with --mode changed
    "jobs": ("reproduce", "table"), "backend": ("reproduce", "table"), "address": ("reproduce", "table"),
    "results": ("reproduce", "table", "results", "stats"),
    "published": ("reproduce", "table", "compare", "results"),
    "variants": ("compare",),
    "seeds": ("reproduce", "table", "compare", "publish", "results"),
}


def check_args(args, parser):
    """--seed in its range before any work (UserError naming the option); the grid's --seeds and
    --jobs are checked where the grid reads them (train/experiments/grid.py), also before any work.
    A one-run option given to a grid mode, a grid option to a one-run mode, or any option to a mode
    that does not read it (OPTION_MODES), is refused rather than ignored."""
    low, high = SEED_RANGE
    if not low <= args.seed <= high:
        raise UserError(f"--seed {args.seed}: out of range (takes {low}..{high})")
    if args.checkpoint is not None and not args.checkpoint.strip():
        raise UserError("--checkpoint '': takes a checkpoint file or a pretrained model folder")
    if any(not name.strip() for name in args.allow_hosts):
        raise UserError("--allow-host '': takes a host name")
    if args.mode == "results":
        given = [option for option, value in (("--model", args.model), ("--dataset", args.dataset),
                                              ("--models", args.models), ("--datasets", args.datasets))
                 if value is not None]
        if given:
            raise UserError(f"{given[0]}: --mode results renders the whole page (every model and dataset)")
    if args.mode in GRID_MODES:
        if args.dataset is not None:
            raise UserError(f"--dataset: --mode {args.mode} takes --datasets NAMES (Table 3's datasets); "
                            f"a folder of your own trains with --mode train --dataset FOLDER")
        if args.model is not None:
            raise UserError(f"--model: --mode {args.mode} takes --models NAMES")
    else:
        for option, value in (("--models", args.models), ("--datasets", args.datasets)):
            if value is not None:
                raise UserError(f"{option}: --mode {args.mode} takes one {option[:-1]} NAME")
    flags = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    for dest, modes in OPTION_MODES.items():
        if args.mode not in modes and getattr(args, dest) != parser.get_default(dest):
            flag = flags[dest]
            raise UserError(f"{flag}: --mode {args.mode} does not use it (it is for --mode {', '.join(modes)})")
    return args


def build_parser():
    """The command line's parser: every mode and option (docs/USAGE.md lists each one; a test checks)."""
    parser = _Parser(description="Aspect-based sentiment analysis on MAMS (CapsNet and friends).")
    parser.add_argument("--mode", choices=MODES, default="train")
    parser.add_argument("--model", help="a name from configs/models (default capsnet)")
    parser.add_argument("--dataset", help="a name from configs/datasets (default mams-atsa), or a folder of your "
                        "own data: train and test (optionally val) files, .xml or .jsonl")
    parser.add_argument("--config", help="an experiment YAML merged over the model and dataset configs")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set train.epochs=1 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="the training seed, 0..2^32-1 (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--checkpoint", help="test/predict/explain/serve/export: a checkpoint file, or for "
                        "predict/explain/serve a pretrained folder (default: the run folder's checkpoint, else "
                        "the shipped model in pretrained/)")
    parser.add_argument("--text", help="predict/explain: a sentence to classify")
    parser.add_argument("--aspect", action="append", default=[],
                        help="predict/explain: an aspect term or category (repeatable)")
    parser.add_argument("--out", help="explain: the heat map's .png file, or a folder for them (default: "
                        "<run folder>/explain/, or runs/explain/<name>/ for a pretrained folder); results: the "
                        "page (default <--results>/RESULTS.md); export: the pretrained folder to write")
    parser.add_argument("--input", help="predict: a JSONL file of {\"text\": ..., \"aspects\": [...]}")
    parser.add_argument("--force", action="store_true", help="preprocess: redo the work even if up to date; "
                        "publish: replace published runs that hold another result")
    parser.add_argument("--overwrite", action="store_true", help="train: replace a finished run in the run folder "
                        "(without it, a finished run is kept and the training refused); export: replace the "
                        "pretrained model at --out")
    parser.add_argument("--host", default="127.0.0.1", help="serve: the address to listen on (default 127.0.0.1, "
                        "this machine only; 0.0.0.0 exposes the model to the network, see docs/SERVING.md)")
    parser.add_argument("--port", type=int, default=8000, help="serve: the TCP port (default 8000; 0 picks a free one)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME", dest="allow_hosts",
                        help="serve: also answer requests whose Host header is NAME (repeatable; by default only "
                        "the bound address, and localhost on a loopback address)")
    grid = parser.add_argument_group("reproduce / table / compare (the paper's Table 3 grid; train/experiments/)")
    grid.add_argument("--models", help="comma-separated models (default: the 16 rows of Table 3); "
                      "compare: the two models A,B")
    grid.add_argument("--datasets", help="comma-separated datasets (default: the 6 columns of Table 3)")
    grid.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per cell (default 5, at most 100)")
    grid.add_argument("--jobs", type=int, default=1, help="runs trained at once, as separate processes "
                      "(default 1, at most 256)")
    grid.add_argument("--backend", choices=("local", "ray"), default="local", help="local processes or Ray tasks")
    grid.add_argument("--address", help="ray: the cluster address HOST:PORT (default: start a local Ray)")
    grid.add_argument("--results", help="reproduce / table / results / stats: the folder your tables and page go to "
                      "(default <paths.runs>/results; the committed results/ is written by --mode publish, "
                      "and by --mode stats --results results)")
    grid.add_argument("--published", help="the published runs the grid, table, "
                      "compare and results read beside your run folders (default results/predictions; "
                      "'none': your run folders only)")
    grid.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE", dest="variants",
                      help="compare: one model against itself, A = its runs with these settings (and their "
                      "run_name), B = its runs without")
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = check_args(parser.parse_args(argv), parser)
    args.model = args.model or DEFAULT_MODEL
    return args


def main(argv=None):
    args = parse_args(argv)
    from train.config import compose
    if args.mode == "stats":
        from train.experiments.table2 import stats_job
        names = [args.dataset] if args.dataset else None
        table, written = stats_job(names, lambda name: compose(args.model, name, args.config, args.overrides),
                                   args.results)
        print(table, end="")
        print(f"written to {written}", file=sys.stderr)
        return 0
    from train.experiments.runs import PUBLISHED_ROOT
    published = PUBLISHED_ROOT if args.published is None else \
        None if args.published.strip().lower() == "none" else args.published
    if published is not None and not Path(published).is_dir():
        problem = "a file, not a folder" if Path(published).exists() else "no such folder"
        raise UserError(f"--published {published}: {problem} (the published runs' root, or 'none')")
    if args.mode in ("reproduce", "table"):
        from train.experiments.jobs import grid_job
        return grid_job(args.mode, args.models, args.datasets, args.seeds, args.jobs, args.device, args.config,
                        args.overrides, args.backend, args.address, args.results, published)
    if args.mode == "compare":
        from train.experiments.compare import compare_job
        return compare_job(args.models, args.datasets, args.seeds, args.config, args.overrides, published=published,
                           variants=args.variants)
    if args.mode == "publish":
        from train.experiments.publish import publish_job
        return publish_job(args.models, args.datasets, args.seeds, args.config, args.overrides, args.force)
    cfg = compose(args.model, args.dataset or "mams-atsa", args.config, args.overrides)
    if args.mode == "results":
        from common.io import check_writable_dir
        from train.experiments.results_page import results_job
        from train.experiments.runs import REPO_ROOT
        results = Path(args.results or Path(cfg.paths.runs) / "results")
        out = Path(args.out) if args.out else results / "RESULTS.md"
        check_writable_dir(out.parent, "--out" if args.out else "--results")
        print(results_job(REPO_ROOT / "results", out, args.seeds, args.config, args.overrides, published))
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
        print_json(train_job(cfg, args.seed, args.device, overwrite=args.overwrite))
    elif args.mode == "export":
        from train.inference.evaluate import export_job
        if not args.out:
            raise UserError("--mode export needs --out FOLDER: where the pretrained model goes")
        print(export_job(cfg, args.seed, args.checkpoint, Path(args.out), args.device, args.overwrite))
    elif args.mode == "test":
        from train.inference.evaluate import test_job
        from train.run import print_json
        print_json(test_job(cfg, args.seed, args.device, args.checkpoint))
    elif args.mode == "report":
        from common.io import check_writable_dir
        from train.experiments.report import report
        runs = Path(cfg.paths.runs)
        check_writable_dir(runs, "paths.runs")
        print(report(runs, runs / "summary.md"), end="")
    elif args.mode == "serve":
        from train.inference.evaluate import answer_settings, load_classifier, model_to_use
        from train.inference.serve import bind, need_serve_packages, serve
        need_serve_packages()
        sock = bind(args.host, args.port)   # a busy port fails before the model loads
        checkpoint = model_to_use(cfg, args.seed, args.checkpoint)
        clf = answer_settings(load_classifier(checkpoint, args.device, cfg.data.name if args.dataset else None,
                                              cfg.inference.bf16), cfg, args.overrides)
        serve(clf, sock=sock, allowed_hosts=args.allow_hosts, settings=cfg.inference)
    elif args.mode in ("predict", "explain"):
        # the checkpoint alone is enough: no raw or processed data is read (train/inference/api.py)
        from train.inference.evaluate import answer_settings, load_classifier, model_to_use
        from train.inference.explain import explain_job
        from train.inference.requests import read_requests
        from train.run import print_json
        requests = read_requests(args.text, args.aspect, args.input)
        checkpoint = model_to_use(cfg, args.seed, args.checkpoint)
        clf = answer_settings(load_classifier(checkpoint, args.device, cfg.data.name if args.dataset else None,
                                              cfg.inference.bf16), cfg, args.overrides)
        if args.mode == "predict":
            results = clf.predict_requests(requests)
        else:   # heat maps beside the checkpoint, or under runs/explain/ for a pretrained folder
            default_out = (Path(cfg.paths.runs) / "explain" / checkpoint.name if checkpoint.is_dir()
                           else checkpoint.parent / "explain")
            results = explain_job(clf, requests, args.out, default_out)
        for result in results:
            print_json(result)
    return 0


if __name__ == "__main__":
    run_command(main)
