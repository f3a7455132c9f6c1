"""A trained model from Python (notebooks, services), and the code path behind --mode predict / explain.

    from train.inference.api import SentimentClassifier
    clf = SentimentClassifier.load("runs/mams-atsa/capsnet/seed0/checkpoint.pt", device="cpu")
    clf = SentimentClassifier.from_pretrained("pretrained/capsnet-mams-atsa")   # a shipped model
    clf.predict([("The food was great but the service slow.", ["food", "service"])])
    # -> [{"text": ..., "aspect": "food", "label": "positive", "scores": {...}}, {... "service" ...}]
    clf.explain("The food was great but the service slow.", "service")   # per-word weights

Everything needed to encode new text is inside the checkpoint (train/checkpoint.py): the vocabulary, task,
categories, lowercase setting and BERT backbone setting; no raw or processed data is read. BERT
models also need their backbone (model.backbone: the packaged MiniLM, "mpnet" or a local encoder folder),
which must hold the tokenizer they were trained with.

Every mistake of the caller (a missing or damaged checkpoint, a device name that is none, items that
are not (text, aspects) pairs, a text that is not a string or is empty, no aspects, an aspect that
is not in the text or not a known category, a text longer than data.max_words, a batch_size that is
not a whole number 1..65536, bf16 on a CPU without native bf16) raises common.errors.UserError,
whose message names the checkpoint, argument or item; the command line prints the same message as
its `error:` line. Any other exception is a bug.
"""
import contextlib
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from common.labels import LABELS
from data_process.encode import Encoder
from data_process.fields import length_field
from data_process.vocab import SPECIALS
from src.dataset import ABSADataset, make_eval_loader, make_loader
from src.models import MODELS, DataInfo, build_model

from ..checkpoint import load_checkpoint, upgrade_state
from ..config import from_tree, with_added_keys
from ..kernels import use_kernels
from ..runtime import cpu_has_bf16, pick_device
from ..trainer import move, predict_scores
from .requests import make_instances, requests_from_items

ASPECT_MARKER = SPECIALS[2]   # "<aspect>": the aspect term's place in CapsNet's ATSA context
MAX_BATCH_SIZE = 65_536
MAX_POSITIONS = 32_767   # the 16-bit position distances: the limit of a checkpoint without data.max_words


def stored_config(checkpoint, state):
    """The RunConfig a checkpoint was trained with."""
    stored = with_added_keys(state["config"])
    stored.pop("seed", None)
    try:
        return from_tree(stored, stored.get("model_name", ""))
    except UserError as err:
        raise UserError(f"{checkpoint}: its stored config does not fit this version ({err}); re-train") from None


def check_stored(source, state):
    """The encoder and the data shapes a checkpoint or pretrained folder (`source`) stores, checked
    against each other before anything is built from them: a damaged or hand-edited file is one
    UserError naming it, not a traceback or a model that silently reads the wrong words."""
    folder = Path(source).is_dir()
    where, info_where = (Path(source) / "encoder.json", Path(source) / "config.json") if folder else (source, source)
    encoder, info = state.get("encoder"), state.get("data_info")

    def bad(file, what):
        raise UserError(f"{file}: {what}; it is damaged (re-export or re-train the model)")

    if not isinstance(encoder, dict):
        bad(where, "the encoder is not an object")
    words, task, categories = encoder.get("words"), encoder.get("task"), encoder.get("categories")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        bad(where, '"words" is not a list of strings')
    if len(set(words)) != len(words):
        bad(where, '"words" holds a word twice')
    if task not in ("atsa", "acsa"):
        bad(where, f'"task" is {task!r}, not "atsa" or "acsa"')
    if task == "acsa" and (not isinstance(categories, list) or not categories
                           or not all(isinstance(c, str) for c in categories)):
        bad(where, '"categories" is not a list of category names')
    if not isinstance(encoder.get("lowercase"), bool):
        bad(where, '"lowercase" is not true or false')
    bert = encoder.get("bert")
    if bert is not None and not (isinstance(bert, dict) and isinstance(bert.get("path"), str)
                                 and isinstance(bert.get("max_length"), int)):
        bad(where, '"bert" is not {"path": ..., "max_length": ...}')
    shapes = ("embeddings_shape", "sentiment_shape")
    if not isinstance(info, dict) or info.get("task") not in ("atsa", "acsa") \
            or not all(isinstance(info.get(k), int) and info[k] >= 0 for k in ("num_classes", "num_categories")) \
            or not all(isinstance(info.get(k), list) and len(info[k]) == 2
                       and all(isinstance(n, int) and n > 0 for n in info[k]) for k in shapes):
        bad(info_where, "its data_info (the shapes of the stored arrays) is missing or malformed")
    rows, stored_task, num_categories = info["embeddings_shape"][0], info["task"], info["num_categories"]
    if bert is None and len(words) != rows:   # a word-vector model: one embedding row per word
        bad(where, f'"words" holds {len(words)} words, but the weights have {rows} word vectors')
    if stored_task != task:
        bad(where, f'"task" is {task}, but the model was trained for {stored_task}')
    if task == "acsa" and len(categories) != num_categories:
        bad(where, f'"categories" names {len(categories)}, but the model was trained on {num_categories}')


def stored_data_info(info):
    """A DataInfo with zero arrays of the stored shapes (the checkpoint's weights replace them)."""
    return DataInfo(task=info["task"], num_classes=info["num_classes"], num_categories=info["num_categories"],
                    embeddings=np.zeros(info["embeddings_shape"], dtype=np.float32),
                    sentiment=np.zeros(info["sentiment_shape"], dtype=np.float32))


def check_batch_size(batch_size):
    """None (the config's eval_batch_size) or a whole number 1..MAX_BATCH_SIZE."""
    if batch_size is None:
        return None
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UserError(f"batch_size={batch_size!r}: takes a whole number 1..{MAX_BATCH_SIZE}")
    return batch_size


def _device(device):
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device)):
        raise UserError(f"device={device!r}: takes 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device")
    return pick_device(device)


def _items(items):
    """The items of predict() / explain_batch() as checked requests; anything else is a UserError."""
    if isinstance(items, bytes) or not (isinstance(items, (str, dict)) or hasattr(items, "__iter__")):
        raise UserError(f"items: expected (text, [aspects]) pairs or {{\"text\", \"aspects\"}} mappings, "
                        f"not {type(items).__name__}")
    return requests_from_items(items)


def _scores(row):
    return {name: round(float(row[i]), 4) for i, name in enumerate(LABELS)}


def check_bf16(bf16, device):
    """inference.bf16 as a bool; on a CPU without native bf16 (emulated: slower, not faster) or a GPU
    without bf16, a UserError naming the setting."""
    if not isinstance(bf16, bool):
        raise UserError(f"bf16={bf16!r}: takes true or false")
    if bf16 and device.type == "cpu" and not cpu_has_bf16():
        raise UserError("inference.bf16=true: this CPU has no native bf16 (AVX512-BF16 or AMX); set "
                        "inference.bf16=false")
    if bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"inference.bf16=true: {torch.cuda.get_device_name(device)} has no bf16; set "
                        f"inference.bf16=false")
    return bf16


@dataclass
class Prepared:
    """Checked and encoded requests: their instances (one per aspect, in order) and the dataset of
    the fields the model reads, on the model's device."""
    instances: list
    dataset: ABSADataset

    def __len__(self):
        return len(self.instances)


def merged_batch(pieces):
    """One batch of rows from several Prepared datasets, [(dataset, start, stop)], in that order:
    each padded field widened to the widest piece (with 0, the padding of word fields; BERT fields
    share one width) and trimmed to the longest real length, as ABSADataset.collate does."""
    first = pieces[0][0]
    batch = {}
    for name in first.arrays:
        parts = [dataset.arrays[name][start:stop] for dataset, start, stop in pieces]
        if parts[0].dim() == 2:
            width = max(part.size(1) for part in parts)
            parts = [torch.nn.functional.pad(part, (0, width - part.size(1))) for part in parts]
        batch[name] = torch.cat(parts) if len(parts) > 1 else parts[0]
    for name, lengths in first.length_of.items():
        batch[name] = batch[name][:, :max(int(batch[lengths].max()), 1)]
    return batch


def check_backbone(setting, fingerprints):
    """The folder behind model.backbone must hold the tokenizer the checkpoint was trained with
    (its arrays' key, train.data.PreparedData.fingerprints)."""
    from data_process.bert_inputs import backbone_key, resolve_backbone
    stored = fingerprints.get("BERT inputs")
    folder = resolve_backbone(setting)
    if stored is not None and backbone_key(folder) != stored:
        raise UserError(f"it was trained with the tokenizer {stored} (model.backbone={setting}), but {folder} "
                        f"holds {backbone_key(folder)}; point model.backbone at the training folder")


class SentimentClassifier:
    """A trained ABSA model with its encoder: predict and explain on new (text, aspect) pairs."""

    def __init__(self, model, encoder, cfg, device, checkpoint=None, fingerprints=None, seed=None, state=None,
                 bf16=False):
        self.model = use_kernels(model, cfg.train.kernels).to(device).eval()   # the run's implementation
        self.encoder, self.cfg, self.device = encoder, cfg, device
        self.checkpoint, self.fingerprints, self.seed = checkpoint, fingerprints or {}, seed
        self.bf16 = check_bf16(bf16, device)
        state = state or {}
        self.state_config = {k: v for k, v in (state.get("config") or {}).items() if k != "seed"}
        self.data_info = state.get("data_info")

    @classmethod
    def load(cls, checkpoint, device="cpu", bf16=False):
        """From a checkpoint.pt (format 2) or a pretrained folder (from_pretrained); device "cpu",
        "cuda", "auto" or a torch.device; bf16: run the model under bf16 autocast (inference.bf16;
        docs/SERVING.md)."""
        if not isinstance(checkpoint, (str, Path)):
            raise UserError(f"checkpoint={checkpoint!r}: takes the path of a checkpoint.pt")
        checkpoint = Path(checkpoint)
        if checkpoint.is_dir():
            return cls.from_pretrained(checkpoint, device, bf16)
        device = _device(device)
        check_bf16(bf16, device)
        state = load_checkpoint(checkpoint)
        if "encoder" not in state or "data_info" not in state:
            raise UserError(f"{checkpoint}: the checkpoint holds no encoder (saved without one); re-train")
        return cls._from_state(checkpoint, state, device, bf16)

    @classmethod
    def from_pretrained(cls, folder, device="cpu", bf16=False):
        """From a pretrained folder (model.safetensors, config.json, encoder.json, README.md:
        train/inference/pretrained.py), e.g. one shipped in pretrained/ or written by save_pretrained."""
        from .pretrained import load_pretrained
        if not isinstance(folder, (str, Path)):
            raise UserError(f"folder={folder!r}: takes the path of a pretrained model folder")
        device = _device(device)
        check_bf16(bf16, device)
        return cls._from_state(Path(folder), load_pretrained(folder), device, bf16)

    def save_pretrained(self, folder, metrics=None, command=None, overwrite=False):
        """Write this model as a pretrained folder (weights as safetensors, config, encoder, model card);
        `metrics`: its run's metrics.json, for the card's numbers and provenance. A folder that holds a
        pretrained model already is replaced only with overwrite=True."""
        from .pretrained import save_pretrained
        return save_pretrained(self, folder, metrics, command, overwrite)

    @classmethod
    def _from_state(cls, source, state, device, bf16=False):
        cfg = stored_config(source, state)
        check_stored(source, state)
        encoder = Encoder.from_state(state["encoder"])
        try:
            if encoder.bert is not None:
                check_backbone(encoder.bert.path, state.get("fingerprints") or {})
            model = build_model(cfg.model_name, cfg.model, stored_data_info(state["data_info"]))
        except UserError as err:
            if encoder.bert is None:
                raise
            raise UserError(f"{source}: cannot load its backbone: {err}") from None
        try:
            model.load_state_dict(upgrade_state(model, state["model_state"]))
        except (RuntimeError, KeyError, TypeError) as err:   # torch lists every mismatched tensor
            first = str(err).strip().splitlines()
            raise UserError(f"{source}: its weights do not fit the {cfg.model_name} model of this version "
                            f"({first[-1].strip() if first else type(err).__name__}); re-train") from None
        return cls(model, encoder, cfg, device, source, state.get("fingerprints"), state["config"].get("seed"), state,
                   bf16)

    def autocast(self):
        """The precision the model runs in: bf16 autocast when self.bf16, else float32."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @property
    def task(self):
        return self.encoder.task

    @property
    def categories(self):
        """ACSA: the category names the model knows (None for ATSA)."""
        return self.encoder.categories

    @property
    def max_words(self):
        """The longest text (in words, and in tokens) predict and explain take: data.max_words."""
        return self.cfg.data.max_words or MAX_POSITIONS

    def check_requests(self, requests):
        """The instances of checked requests [(text, [aspects], where)], every one of them checked
        (aspects found or known, length within max_words) before any work: a UserError names the first
        bad one. Whitespace words are counted before tokenising, so an overlong text costs no more
        than reading it."""
        limit = self.max_words
        for text, _, where in requests:
            words = len(text.split())
            if words > limit:
                raise UserError(f"{where}: the text has {words} words, more than this model takes "
                                f"(data.max_words={limit})")
        return make_instances(requests, self.task, self.categories)

    def _dataset(self, instances, requests=None):
        """(the encoded arrays, the ABSADataset of the fields the model reads) of `instances`."""
        arrays = self.encoder.encode(instances)
        limit = self.max_words
        for k in np.flatnonzero(arrays["sentence_len"] > limit)[:1]:   # punctuation makes tokens of its own
            where = requests[instances[k].sentence_id][2] if requests else f"item {instances[k].sentence_id}"
            raise UserError(f"{where}: the text has {int(arrays['sentence_len'][k])} tokens, more than this "
                            f"model takes (data.max_words={limit})")
        return arrays, ABSADataset(arrays, self.model.input_fields())

    def predict(self, items, batch_size=None):
        """[{"text", "aspect", "label", "scores"}], one per (text, aspect) in order. `items`: pairs
        (text, [aspects]) or (text, aspect), or {"text": ..., "aspects": [...]} mappings."""
        return self.predict_requests(_items(items), batch_size)

    def predict_requests(self, requests, batch_size=None):
        """predict() for checked requests [(text, [aspects], where)] (train.inference.requests.read_requests)."""
        batch_size = check_batch_size(batch_size)
        prepared = self.prepare(requests)
        if not prepared.instances:
            return []
        loader = make_eval_loader(prepared.dataset, batch_size or self.cfg.train.eval_batch_size)
        with self.autocast():
            scores, _ = predict_scores(self.model, loader, self.device)   # in the order of the requests
        return self.records(prepared.instances, scores)

    def prepare(self, requests):
        """Prepared (instances and dataset) of checked requests: every request checked (a UserError
        names the first bad one) and encoded before any model call."""
        instances = self.check_requests(requests)
        if not instances:
            return Prepared([], None)
        return Prepared(instances, self._dataset(instances, requests)[1].to(self.device))

    @torch.no_grad()
    def score_pieces(self, pieces):
        """One model call over rows of several Prepared requests, [(prepared, start, stop)]: the
        scores (float32, on the CPU) of each piece, in order. How --mode serve batches requests."""
        batch = merged_batch([(p.dataset, start, stop) for p, start, stop in pieces])
        with self.autocast():
            scores = self.model(batch).float().cpu()
        return list(scores.split([stop - start for _, start, stop in pieces]))

    def records(self, instances, scores):
        """The records of predict(): one per instance, from the model's scores (N, C) in that order."""
        probabilities = self.model.probabilities(scores)
        labels, rows = probabilities.argmax(-1).tolist(), probabilities.tolist()   # plain Python: fast per row
        return [{"text": i.text, "aspect": i.aspect, "label": LABELS[label], "scores": _scores(row)}
                for i, label, row in zip(instances, labels, rows)]

    def check_explains(self):
        if not self.model.explains():
            explainable = ", ".join(name for name, cls in sorted(MODELS.items()) if cls.explains())
            raise UserError(f"model {self.cfg.model_name} has no attention or routing weights to show; explain "
                            f"works for the models that have them ({explainable})")

    def explain_batch(self, items):
        """The model-level view for analysis: (instances, the padded batch on the device, scores (B, C),
        [src.explain.Weights] whose values (B, T, R) cover every position, padding included)."""
        self.check_explains()
        requests = _items(items)
        instances = self.check_requests(requests)
        arrays, dataset = self._dataset(instances, requests)
        batch = move(next(iter(make_loader(dataset, max(len(instances), 1)))), self.device)
        with torch.no_grad(), self.autocast():
            scores, weights = self.model.explain(batch)
        return instances, arrays, batch, scores.float().cpu(), weights

    def explain(self, text, aspect):
        """What the model computed for one (text, aspect): {"text", "aspect", "label", "scores", "model",
        "weights": [{"name", "field", "words", "rows": {row: [one value per word]}}]} plus, for capsule
        models, "capsule_lengths". Words are the tokens the model read (the context with <aspect> for
        CapsNet on ATSA; word pieces for BERT models)."""
        instances, arrays, batch, scores, weights = self.explain_batch([(text, [aspect])])
        instance, row = instances[0], self.model.probabilities(scores)[0]
        record = {"text": instance.text, "aspect": instance.aspect, "label": LABELS[int(torch.argmax(row))],
                  "scores": _scores(row), "model": self.cfg.name}
        if self.model.score_kind == "capsule lengths":
            record["capsule_lengths"] = _scores(scores[0])
        record["weights"] = [self._heat_map(w, instance, arrays, batch) for w in weights]
        return record

    def _heat_map(self, weights, instance, arrays, batch):
        words = self.encoder.field_tokens(instance, weights.field, arrays, 0)
        if weights.show is not None:
            positions = batch[weights.show][0].nonzero().flatten().tolist()
        else:
            positions = list(range(int(batch[length_field(weights.field)][0])))
        values = weights.values[0].float().cpu()
        heat = {"name": weights.name, "field": weights.field, "words": [words[p] for p in positions],
                "rows": {name: [round(float(values[p, r]), 6) for p in positions]
                         for r, name in enumerate(weights.rows)}}
        if ASPECT_MARKER in heat["words"]:   # CapsNet on ATSA reads the context: the term replaced by the marker
            k = heat["words"].index(ASPECT_MARKER)
            shares = ", ".join(f"{name} {row[k]:.2f}" for name, row in heat["rows"].items())
            heat["marker"] = {"word": ASPECT_MARKER, "position": k,
                              "rows": {name: row[k] for name, row in heat["rows"].items()}}
            heat["note"] = (f"{ASPECT_MARKER} stands where the aspect term was and tells the encoder which term "
                            f"is asked about; it takes {shares}. The other words share the rest, and the heat "
                            f"map's colours are scaled to them.")
        return heat

    def reconfigured(self, cfg):
        """This classifier (changed in place, and returned) answering with `cfg`, the stored config with
        other answer-time settings (evaluate.ANSWER_KEYS: max_words, eval_batch_size, kernels)."""
        self.cfg = cfg
        use_kernels(self.model, cfg.train.kernels)
        return self

    def with_paths(self, paths, limit=None):
        """The stored config with this machine's paths (and a data limit), for --mode test."""
        return self.cfg.replace(paths=paths, data=dataclasses.replace(self.cfg.data, limit=limit))
