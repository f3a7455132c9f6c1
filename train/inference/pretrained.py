"""A trained model as a folder in Hugging Face's layout, to ship, share and load without the run folder:

    <folder>/model.safetensors   the weights (safetensors: tensors only, no pickled code)
    <folder>/config.json         the run's config, seed and test metrics, and the shapes the model is built with
    <folder>/encoder.json        what encodes new text: the vocabulary, task, categories, lowercase, BERT inputs
    <folder>/README.md           the model card: what it is, how it was trained (command, commit, seed,
                                 device), its test numbers (model-index metadata) and its limits

save_pretrained(classifier, folder) writes one (--mode export); load_pretrained(folder) reads it back into
the same pieces a checkpoint.pt gives, so SentimentClassifier.from_pretrained predicts exactly as the
checkpoint it came from. The models shipped with the project live in pretrained/ (SHIPPED).
"""
import json
import os
import shutil
from pathlib import Path

from common.errors import UserError
from common.io import check_writable_dir, read_json_object, write_text

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "pretrained"
FORMAT = 1
FILES = ("model.safetensors", "config.json", "encoder.json", "README.md")
DATASET_TITLES = {"mams-atsa": "MAMS-ATSA", "mams-acsa": "MAMS-ACSA"}


def shipped_folder(model, dataset):
    """The shipped model for a model and dataset name (pretrained/<model>-<dataset>), or None."""
    folder = SHIPPED / f"{model}-{dataset}"
    return folder if (folder / "config.json").is_file() else None


def save_pretrained(clf, folder, metrics=None, command=None, overwrite=False):
    """Write `clf` (a SentimentClassifier) as a pretrained folder; `metrics`: its run's metrics.json
    (test numbers, commit, device) for the card. The folder is written whole beside its place and then
    renamed into it, so a stopped write leaves no half folder. A folder holding other files is refused;
    one holding a pretrained model is replaced only with `overwrite` (--overwrite)."""
    from safetensors.torch import save

    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir() or any(p.name not in FILES for p in folder.iterdir()):
            raise UserError(f"{folder}: exists and is not a pretrained model folder; name a new or empty folder")
        if any(folder.iterdir()) and not overwrite:
            raise UserError(f"{folder}: holds a pretrained model already; --overwrite (overwrite=True) "
                            f"replaces it, or name a new folder")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in clf.model.state_dict().items()}
    metrics = metrics or {}
    config = {"format": FORMAT, "config": dict(clf.state_config, seed=clf.seed), "data_info": clf.data_info,
              "fingerprints": clf.fingerprints, "seed": clf.seed,
              "trained": {k: metrics.get(k) for k in ("commit", "dirty", "device", "dataset")},
              "test": {k: metrics.get("test", {}).get(k) for k in ("accuracy", "macro_f1")}}
    shipped = folder.resolve().parent == SHIPPED
    card = model_card(folder.name, config, command, f"pretrained/{folder.name}" if shipped else folder.as_posix())
    check_writable_dir(folder.parent, "the pretrained folder's parent")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}.staging"   # made with the user's umask
    shutil.rmtree(staging, ignore_errors=True)    # a leftover of a stopped write of this process id
    staging.mkdir()
    try:
        (staging / "model.safetensors").write_bytes(save(state, metadata={"format": "pt"}))
        write_text(staging / "config.json", json.dumps(config, indent=1, sort_keys=True) + "\n")
        write_text(staging / "encoder.json", json.dumps(clf.encoder.state(), ensure_ascii=False) + "\n")
        write_text(staging / "README.md", card)
        if folder.exists():
            old = staging.with_name(staging.name + ".old")
            folder.rename(old)        # the two renames: the only moment without a folder
            try:
                staging.rename(folder)
            except OSError:
                old.rename(folder)
                raise
            shutil.rmtree(old)
        else:
            staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_pretrained(folder):
    """(the checkpoint-like state dict: config, encoder, data_info, fingerprints, model_state) of a
    pretrained folder; a missing or damaged folder is a UserError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: pretrained model folder not found")
    config = read_json_object(folder / "config.json", "pretrained model config")
    if config.get("format") != FORMAT or not isinstance(config.get("config"), dict):
        raise UserError(f"{folder / 'config.json'}: not a pretrained model of this project (format {FORMAT})")
    encoder = read_json_object(folder / "encoder.json", "pretrained model encoder")
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise UserError(f"{weights}: not found")
    try:
        model_state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{weights}: not readable weights ({err})") from None
    return {"config": config["config"], "encoder": encoder, "data_info": config.get("data_info"),
            "fingerprints": config.get("fingerprints") or {}, "model_state": model_state,
            "test": config.get("test") or {}, "trained": config.get("trained") or {}}


def _yaml_metadata(name, config):
    dataset = config["config"]["data"]["name"]
    title = DATASET_TITLES.get(dataset, dataset)
    task = config["config"]["data"]["task"]
    task_name = "Aspect-term sentiment classification" if task == "atsa" else "Aspect-category sentiment classification"
    test = config.get("test") or {}
    metrics = []
    if test.get("accuracy") is not None:
        metrics.append(f"      - {{type: accuracy, value: {test['accuracy']}, name: Test accuracy}}")
    if test.get("macro_f1") is not None:
        metrics.append(f"      - {{type: f1, value: {test['macro_f1']}, name: Test macro-F1, "
                       "args: {average: macro}}")
    return "\n".join([
        "---", "language: en", "license: mit", "library_name: pytorch",
        f"tags: [aspect-based-sentiment-analysis, sentiment-analysis, {config['config']['model_name']}, mams]",
        f"datasets: [{title}]", "metrics: [accuracy, f1]", "model-index:", f"- name: {name}", "  results:",
        f"  - task: {{type: text-classification, name: {task_name}}}",
        f"    dataset: {{name: {title}, type: {dataset}, split: test}}",
        "    metrics:", *metrics, "---"])


def model_card(name, config, command=None, location=None):
    """README.md of a pretrained folder (Hugging Face's model card: YAML metadata, then prose)."""
    cfg = config["config"]
    trained, test = config.get("trained") or {}, config.get("test") or {}
    dataset, model = cfg["data"]["name"], cfg["model_name"]
    command = command or f"python main.py --mode train --model {model} --dataset {dataset} --seed {config['seed']}"
    commit = trained.get("commit")
    commit_text = (f"{str(commit)[:7]}{'+dirty' if trained.get('dirty') else ''}" if commit else "not recorded")
    numbers = (f"test accuracy {test['accuracy']:.2f}, macro-F1 {test['macro_f1']:.2f}"
               if test.get("accuracy") is not None and test.get("macro_f1") is not None else "not recorded")
    return "\n".join([
        _yaml_metadata(name, config), "",
        f"# {name}", "",
        f"{model} trained on {DATASET_TITLES.get(dataset, dataset)} ({cfg['data']['task'].upper()}), seed "
        f"{config['seed']}: {'a model' if model.startswith('capsnet') else 'a baseline'} of Table 3 of Jiang et al., "
        f"*A Challenge Dataset and Effective Models for Aspect-Based Sentiment Analysis* (EMNLP 2019), as this "
        f"project implements it (docs/MODELS.md).", "",
        "## Results", "",
        f"- {numbers} (percent, on the test split; the project's results page has every seed).",
        f"- Trained with `{command}` at commit {commit_text} on {trained.get('device') or 'an unrecorded device'}.",
        "", "## Use", "",
        "```python",
        "from train.inference.api import SentimentClassifier",
        f"clf = SentimentClassifier.from_pretrained(\"{location or name}\")",
        "clf.predict([(\"The decor is not special at all but their food is amazing.\", [\"decor\", \"food\"])])",
        "```", "",
        "or `python main.py --mode predict --text \"...\" --aspect ...`, which uses this model when you have "
        "trained none. Run either from the checkout's root.", "",
        "## Limits", "",
        f"- Word vectors: {cfg['data']['embeddings']} (GloVe 6B, 50 dimensions), not the paper's GloVe 840B "
        "300d, so it scores below the paper's numbers (docs/RESULTS.md says by how much and why).",
        "- Restaurant reviews in English: other domains and languages are untested.",
        "- ATSA models need the aspect term to occur in the text; ACSA models know only the categories "
        "they were trained on.", ""])
