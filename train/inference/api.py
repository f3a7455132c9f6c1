"""A trained model from Python (notebooks, services), and the code path behind --mode predict / explain.

    from train.inference.api import SentimentClassifier
    clf = SentimentClassifier.load("runs/mams-atsa/capsnet/seed0/checkpoint.pt", device="cpu")
    clf.predict([("The food was great but the service slow.", ["food", "service"])])
    # -> [{"text": ..., "aspect": "food", "label": "positive", "scores": {...}}, {... "service" ...}]
    clf.explain("The food was great but the service slow.", "service")   # per-word weights

Everything needed to encode new text is inside the checkpoint (format 2): the vocabulary, task,
categories, lowercase setting and BERT backbone setting; no raw or processed data is read. BERT
models also need their backbone (model.bert_path: the packaged MiniLM or a local folder).
"""
import dataclasses
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError
from common.labels import LABELS
from data_process.encode import Encoder
from data_process.fields import length_field
from src import kernels
from src.dataset import ABSADataset, make_eval_loader, make_loader
from src.models import DataInfo, build_model

from ..checkpoint import load_checkpoint
from ..config import from_tree, with_later_train_settings
from ..runtime import pick_device
from ..trainer import move, predict_scores
from .requests import make_instances, requests_from_items

CAPSULE_MODELS = "capsnet, capsnet-dr, capsnet-bert, capsnet-bert-dr"
ATTENTION_MODELS = "at-lstm, atae-lstm, bilstm-attn, ian, aoa-lstm, memnet, aen"


def stored_config(checkpoint, state):
    """The RunConfig a checkpoint was trained with. Training settings added to this project after
    it was trained (keys of `train:` it lacks) take their defaults: they do not change the model."""
    stored = with_later_train_settings(state["config"])
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


def _scores(row):
    return {name: round(float(row[i]), 4) for i, name in enumerate(LABELS)}


class SentimentClassifier:
    """A trained ABSA model with its encoder: predict and explain on new (text, aspect) pairs."""

    def __init__(self, model, encoder, cfg, device, checkpoint=None, fingerprints=None, seed=None):
        self.model, self.encoder, self.cfg, self.device = model.to(device).eval(), encoder, cfg, device
        self.checkpoint, self.fingerprints, self.seed = checkpoint, fingerprints or {}, seed
        kernels.use(cfg.train.kernels)   # the run's choice (src/kernels), for every model of this process

    @classmethod
    def load(cls, checkpoint, device="cpu"):
        """From a checkpoint.pt (format 2); device "cpu", "cuda", "auto" or a torch.device."""
        checkpoint = Path(checkpoint)
        device = device if isinstance(device, torch.device) else pick_device(device)
        state = load_checkpoint(checkpoint)
        if "encoder" not in state or "data_info" not in state:
            raise UserError(f"{checkpoint}: the checkpoint holds no encoder (saved without one); re-train")
        cfg = stored_config(checkpoint, state)
        encoder = Encoder.from_state(state["encoder"])
        try:
            model = build_model(cfg.model_name, cfg.model, stored_data_info(state["data_info"]))
        except UserError as err:
            if encoder.bert is None:
                raise
            raise UserError(f"{checkpoint}: cannot load its BERT backbone: {err}") from None
        model.load_state_dict(state["model_state"])
        return cls(model, encoder, cfg, device, checkpoint, state.get("fingerprints"), state["config"].get("seed"))

    @property
    def task(self):
        return self.encoder.task

    @property
    def categories(self):
        """ACSA: the category names the model knows (None for ATSA)."""
        return self.encoder.categories

    def _dataset(self, instances):
        """(the encoded arrays, the ABSADataset of the fields the model reads) of `instances`."""
        arrays = self.encoder.encode(instances)
        return arrays, ABSADataset(arrays, self.model.input_fields())

    def predict(self, items, batch_size=None):
        """[{"text", "aspect", "label", "scores"}], one per (text, aspect) in order. `items`: pairs
        (text, [aspects]) or (text, aspect), or {"text": ..., "aspects": [...]} mappings."""
        return self.predict_requests(requests_from_items(items), batch_size)

    def predict_requests(self, requests, batch_size=None):
        """predict() for checked requests [(text, [aspects], where)] (train.inference.requests.read_requests)."""
        instances = make_instances(requests, self.task, self.categories)
        if not instances:
            return []
        dataset = self._dataset(instances)[1].to(self.device)
        loader = make_eval_loader(dataset, batch_size or self.cfg.train.eval_batch_size)
        scores, _ = predict_scores(self.model, loader, self.device)   # in the order of the requests
        probabilities = self.model.probabilities(scores)
        labels, rows = probabilities.argmax(-1).tolist(), probabilities.tolist()   # plain Python: fast per row
        return [{"text": i.text, "aspect": i.aspect, "label": LABELS[label], "scores": _scores(row)}
                for i, label, row in zip(instances, labels, rows)]

    def check_explains(self):
        if not self.model.explains():
            raise UserError(f"model {self.cfg.model_name} has no attention or routing weights to show; explain "
                            f"works for capsule models ({CAPSULE_MODELS}) and attention models ({ATTENTION_MODELS})")

    def explain_batch(self, items):
        """The model-level view for analysis: (instances, the padded batch on the device, scores (B, C),
        [src.explain.Weights] whose values (B, T, R) cover every position, padding included)."""
        self.check_explains()
        instances = make_instances(requests_from_items(items), self.task, self.categories)
        arrays, dataset = self._dataset(instances)
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
