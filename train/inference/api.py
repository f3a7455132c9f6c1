"""A trained model from Python (notebooks, services), and the code path behind --mode predict / explain.

    from train.inference.api import SentimentClassifier
    clf = SentimentClassifier.load("runs/mams-atsa/capsnet/seed0/checkpoint.pt", device="cpu")
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
not a whole number 1..65536) raises common.errors.UserError, whose message names the checkpoint,
argument or item; the command line prints the same message as its `error:` line. Any other
exception is a bug.
"""
import dataclasses
import re
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from common.labels import LABELS
from data_process.encode import Encoder
from data_process.fields import length_field
from src.dataset import ABSADataset, make_eval_loader, make_loader
from src.models import MODELS, DataInfo, build_model

from ..checkpoint import load_checkpoint, upgrade_state
from ..config import from_tree
from ..kernels import use_kernels
from ..runtime import pick_device
from ..trainer import move, predict_scores
from .requests import make_instances, requests_from_items

MAX_BATCH_SIZE = 65_536
MAX_POSITIONS = 32_767   # the 16-bit position distances: the limit of a checkpoint without data.max_words


def stored_config(checkpoint, state):
    """The RunConfig a checkpoint was trained with."""
    stored = dict(state["config"])
    stored.pop("seed", None)
    try:
        return from_tree(stored, stored.get("model_name", ""))
    except UserError as err:
        raise UserError(f"{checkpoint}: its stored config does not fit this version ({err}); re-train") from None


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

    def __init__(self, model, encoder, cfg, device, checkpoint=None, fingerprints=None, seed=None):
        self.model = use_kernels(model, cfg.train.kernels).to(device).eval()   # the run's implementation
        self.encoder, self.cfg, self.device = encoder, cfg, device
        self.checkpoint, self.fingerprints, self.seed = checkpoint, fingerprints or {}, seed

    @classmethod
    def load(cls, checkpoint, device="cpu"):
        """From a checkpoint.pt (format 2); device "cpu", "cuda", "auto" or a torch.device."""
        if not isinstance(checkpoint, (str, Path)):
            raise UserError(f"checkpoint={checkpoint!r}: takes the path of a checkpoint.pt")
        checkpoint = Path(checkpoint)
        device = _device(device)
        state = load_checkpoint(checkpoint)
        if "encoder" not in state or "data_info" not in state:
            raise UserError(f"{checkpoint}: the checkpoint holds no encoder (saved without one); re-train")
        cfg = stored_config(checkpoint, state)
        encoder = Encoder.from_state(state["encoder"])
        try:
            if encoder.bert is not None:
                check_backbone(encoder.bert.path, state.get("fingerprints") or {})
            model = build_model(cfg.model_name, cfg.model, stored_data_info(state["data_info"]))
        except UserError as err:
            if encoder.bert is None:
                raise
            raise UserError(f"{checkpoint}: cannot load its backbone: {err}") from None
        try:
            model.load_state_dict(upgrade_state(model, state["model_state"]))
        except (RuntimeError, KeyError, TypeError) as err:   # torch lists every mismatched tensor
            first = str(err).strip().splitlines()
            raise UserError(f"{checkpoint}: its weights do not fit the {cfg.model_name} model of this version "
                            f"({first[-1].strip() if first else type(err).__name__}); re-train") from None
        return cls(model, encoder, cfg, device, checkpoint, state.get("fingerprints"), state["config"].get("seed"))

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
        instances = self.check_requests(requests)
        if not instances:
            return []
        dataset = self._dataset(instances, requests)[1].to(self.device)
        loader = make_eval_loader(dataset, batch_size or self.cfg.train.eval_batch_size)
        scores, _ = predict_scores(self.model, loader, self.device)   # in the order of the requests
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
        return {"name": weights.name, "field": weights.field, "words": [words[p] for p in positions],
                "rows": {name: [round(float(values[p, r]), 6) for p in positions]
                         for r, name in enumerate(weights.rows)}}

    def with_paths(self, paths, limit=None):
        """The stored config with this machine's paths (and a data limit), for --mode test."""
        return self.cfg.replace(paths=paths, data=dataclasses.replace(self.cfg.data, limit=limit))
