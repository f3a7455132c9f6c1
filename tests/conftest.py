"""Shared fixtures and helpers: the repository root on sys.path, the raw data (found as the project
finds it), `python main.py` in a subprocess (run_main), a tiny SemEval-2014-format XML writer,
composed configs whose output paths point into tmp folders, a tiny BERT folder, a tiny seeded CapsNet
with random data (tiny_capsnet), and for every registered model its tiny config (tiny_model_config)
and the model contract's setup (model_setup)."""
import sys
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# the last place looked for raw data: ../shared/data beside the checkout (CI lays a copy of shared/ there)
BESIDE_CHECKOUT = REPO_ROOT.parent / "shared" / "data"


def find_raw_data():
    """The raw data root the project would read ($ABSA_DATA_ROOT, else paths.raw of configs/default.yaml,
    i.e. data/raw in the checkout), else ../shared/data beside the checkout; None if none holds
    MAMS-ATSA/train.xml."""
    from types import SimpleNamespace

    from common.errors import UserError
    from data_process.raw_data import raw_root
    from train.config import CONFIG_ROOT, read_yaml
    try:
        roots = [raw_root(SimpleNamespace(raw=REPO_ROOT / read_yaml(CONFIG_ROOT / "default.yaml")["paths"]["raw"]))]
    except UserError:   # $ABSA_DATA_ROOT names a missing folder
        roots = []
    for root in roots + [BESIDE_CHECKOUT]:
        if (root / "MAMS-ATSA" / "train.xml").is_file():
            return root
    return None


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data():
    """The raw data root (<root>/MAMS-ATSA/train.xml ...; find_raw_data). Skips only if there is none."""
    root = find_raw_data()
    if root is None:
        pytest.skip("no raw data: set ABSA_DATA_ROOT, or put it under data/raw or ../shared/data")
    return root


def run_main(*args, cwd=REPO_ROOT, env=None, extra_env=None, timeout=600):
    """`python main.py ARGS` in a subprocess, in `cwd`, with `env` (default: this one's) plus `extra_env`."""
    import os
    import subprocess
    full_env = dict(os.environ if env is None else env)
    full_env.update(extra_env or {})
    return subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def write_finished_run(folder, metrics, predictions=""):
    """A fabricated finished run folder: `metrics` as metrics.json, `predictions` as predictions.jsonl and
    an empty zip as checkpoint.pt (the three files that make a folder count as a finished run)."""
    import json
    import zipfile
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(folder / "checkpoint.pt", "w").close()
    (folder / "predictions.jsonl").write_text(predictions)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def checkout_copy(dest):
    """The working tree as a new user's fresh clone: its tracked files and the untracked ones git does not
    ignore, copied to `dest` and committed there as a new git repository (so `git status` there shows
    exactly what commands run in it leave behind). Returns dest."""
    import shutil
    import subprocess
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO_ROOT, capture_output=True, check=True).stdout
    dest = Path(dest)
    for name in filter(None, listed.decode("utf-8").split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh clone"]):
        subprocess.run(git + command, cwd=dest, check=True, capture_output=True)
    return dest


def git_status(folder):
    """`git status --porcelain` of a checkout: every tracked file changed and every untracked file not ignored."""
    import subprocess
    return subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True,
                          check=True).stdout.splitlines()


def ok(result):
    """The result of a run_main that must succeed (exit 0, no traceback)."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def json_lines(stdout):
    """The JSON objects a run printed, one a line."""
    import json
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def sentence_xml(text, terms=(), categories=()):
    """One <sentence>: terms = [(term, from, to, polarity)], categories = [(category, polarity)]."""
    parts = [f"  <sentence>\n    <text>{escape(text)}</text>\n"]
    if terms:
        parts.append("    <aspectTerms>\n")
        for term, start, end, polarity in terms:
            parts.append(f"      <aspectTerm term={quoteattr(term)} from=\"{start}\" to=\"{end}\" "
                         f"polarity={quoteattr(polarity)}/>\n")
        parts.append("    </aspectTerms>\n")
    if categories:
        parts.append("    <aspectCategories>\n")
        for category, polarity in categories:
            parts.append(f"      <aspectCategory category={quoteattr(category)} polarity={quoteattr(polarity)}/>\n")
        parts.append("    </aspectCategories>\n")
    parts.append("  </sentence>\n")
    return "".join(parts)


def term(text, word, polarity, occurrence=0):
    """(term, from, to, polarity) for the occurrence-th appearance of `word` in `text`."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(word, start + 1)
    return (word, start, start + len(word), polarity)


def write_xml(path, sentences, root="sentences"):
    """Write a SemEval-2014-format file from sentence_xml() strings; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>\n' + "".join(sentences) + f"</{root}>\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def xml_writer(tmp_path):
    """write(name, sentences, root='sentences') -> path of a small XML file under tmp_path."""
    def write(name, sentences, root="sentences"):
        return write_xml(tmp_path / name, sentences, root)
    return write


@pytest.fixture
def tmp_paths(tmp_path):
    """{'processed': ..., 'runs': ...}: output folders that are never the repository's."""
    paths = {"processed": tmp_path / "processed", "runs": tmp_path / "runs"}
    return paths


def compose_cfg(dataset="mams-atsa", model="capsnet", processed=None, runs=None, overrides=()):
    """A composed RunConfig whose processed/runs paths point at the given (tmp) folders."""
    from train.config import compose
    overrides = list(overrides)
    if processed is not None:
        overrides.append(f"paths.processed={processed}")
    if runs is not None:
        overrides.append(f"paths.runs={runs}")
    return compose(model, dataset, None, overrides)


TINY_BERT_WORDS = ("the decor is not special at all but their food amazing prices make up for it service was slow "
                   "staff friendly great bad good place menu price ambience miscellaneous , . ! ' s").split()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide randomly initialised BERT with a small WordPiece vocabulary, saved like a
    Hugging Face folder (nothing is downloaded)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(TINY_BERT_WORDS)) \
        + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz")
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return folder


def tiny_data(n=48, length=9, vocab=30, seed=0):
    """Processed-array fields of n random ATSA instances (sentences of 3..length words)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, length + 1, size=n).astype(np.int32)
    sentence = np.zeros((n, length), dtype=np.int32)
    for k, size in enumerate(lengths):
        sentence[k, :size] = rng.integers(3, vocab, size=size)
    context = sentence.copy()
    context[:, 0] = 2  # the term (first word) replaced by the <aspect> marker
    return {"sentence": sentence, "sentence_len": lengths, "context": context, "context_len": lengths,
            "aspect": sentence[:, :1].copy(),
            "aspect_len": np.ones(n, dtype=np.int32), "label": rng.integers(0, 3, size=n).astype(np.int64)}


def tiny_capsnet(cfg):
    """(a seeded CapsNet over 30 random 6-d word vectors, ABSADataset of tiny_data() for it)."""
    import numpy as np
    import torch

    from src.dataset import ABSADataset
    from src.models import DataInfo, build_model
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model(cfg.model_name, cfg.model,
                        DataInfo(task="atsa", embeddings=rng.normal(size=(30, 6)).astype(np.float32),
                                 sentiment=rng.normal(size=(3, 6))))
    return model, ABSADataset(tiny_data(), model.input_fields())


# ---------------------------------------------------------------- models: tiny configs and the contract's setup

DATASET_OF = {"atsa": "mams-atsa", "acsa": "mams-acsa"}
# the size settings shrunk for tests, where a model's Config has them (everything else is its YAML's)
TINY_SIZES = {"hidden_size": 6, "num_filters": 4, "num_heads": 2, "capsule_size": 8}


def model_tasks():
    """[(registered model name, task)] for every task each registered model supports."""
    from src.models import MODELS
    return [(name, task) for name, cls in sorted(MODELS.items()) for task in cls.tasks]


def tiny_model_config(name, task, tiny_bert=None, **changes):
    """The model's Config from configs/models/<name>.yaml (for the task) with TINY_SIZES, the tiny BERT
    folder as backbone where it reads one, and `changes`."""
    import dataclasses
    cfg = compose_cfg(DATASET_OF[task], name).model
    fields = {f.name for f in dataclasses.fields(cfg)}
    small = {key: value for key, value in TINY_SIZES.items() if key in fields}
    if tiny_bert is not None and "backbone" in fields:
        small["backbone"] = str(tiny_bert)
    return dataclasses.replace(cfg, **{**small, **changes})


CATEGORIES = ("food", "service", "staff", "price", "ambience", "menu", "place", "miscellaneous")
SENTENCES = [
    ("The decor is not special at all but their food is amazing.", "decor", "ambience", 1),
    ("The decor is not special at all but their food is amazing.", "food", "food", 0),
    ("Service was slow, the staff friendly.", "staff", "staff", 0),
    ("Prices are fair for the menu they offer and the place is nice.", "menu", "menu", 2),
]


def sentence_instances(task):
    """SENTENCES as Instances of the task (ATSA: the term; ACSA: the category)."""
    from data_process.xml_reader import Instance
    out = []
    for k, (text, term, category, label) in enumerate(SENTENCES):
        if task == "atsa":
            start = text.index(term)
            out.append(Instance(k, text, term, start, start + len(term), label))
        else:
            out.append(Instance(k, text, category, -1, -1, label))
    return out


def model_setup(name, task, tiny_bert, seed=0, **changes):
    """(model in eval mode, a batch of all SENTENCES made by the Encoder for its declared fields, its
    DataInfo, its Config): a tiny_model_config model (dropout 0 unless `changes` say) over 16-d vectors."""
    import dataclasses
    from collections import Counter

    import numpy as np
    import torch

    from data_process.encode import Encoder, tokenise
    from data_process.vocab import Vocab
    from src.dataset import ABSADataset, make_loader
    from src.models import DataInfo, build_model, get_model_class
    cfg = tiny_model_config(name, task, tiny_bert)
    if any(f.name == "dropout" for f in dataclasses.fields(cfg)):
        cfg = dataclasses.replace(cfg, dropout=0.0)
    cfg = dataclasses.replace(cfg, **changes)
    items = sentence_instances(task)
    vocab = Vocab.build(Counter(token for t in tokenise(items, task) for token in t.tokens))
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(0, 0.5, size=(len(vocab), 16)).astype(np.float32)
    embeddings[0] = 0.0
    info = DataInfo(task=task, num_categories=len(CATEGORIES) if task == "acsa" else 0, embeddings=embeddings,
                    sentiment=rng.normal(0, 1, size=(3, 16)).astype(np.float32))
    torch.manual_seed(seed)
    model = build_model(name, cfg, info).eval()
    spec = get_model_class(name).inputs(cfg, task)
    assert tuple(model.input_fields()) == tuple(spec.fields)
    arrays = Encoder(vocab, task, CATEGORIES if task == "acsa" else None, True, spec.bert).encode(items)
    dataset = ABSADataset(arrays, model.input_fields())
    batch = next(iter(make_loader(dataset, len(items))))
    return model, batch, info, cfg


def packed_reference(lstm, inputs, lengths):
    """nn.LSTM over the packed batch (lengths clamped to 1): the definition RNNEncoder must match
    (states zero on padding, [forward final state ; backward final state])."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    packed = pack_padded_sequence(inputs, lengths.clamp(min=1), batch_first=True, enforce_sorted=False)
    outputs, (final, _) = lstm(packed)
    states = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.size(1))[0]
    return states, final.transpose(0, 1).reshape(inputs.size(0), -1)
