"""From a config to ready-to-use splits: preprocess if needed, load arrays, describe the data."""
from pathlib import Path

import numpy as np
import yaml

from data_process.preprocess import load_split, preprocess
from src.models import DataInfo


class PreparedData:
    """The processed arrays of one dataset (plus BERT inputs when the model has a backbone)."""

    def __init__(self, cfg, log=print):
        self.cfg = cfg
        self.dir = preprocess(cfg, log=log)
        self.summary = yaml.safe_load((self.dir / "summary.yaml").read_text())
        self.bert_dir = None
        if cfg["model"].get("bert_path"):
            from data_process.bert_inputs import prepare_bert_inputs
            self.bert_dir = prepare_bert_inputs(cfg, self.dir, log=log)

    def split(self, name):
        arrays = load_split(self.dir, name)
        if self.bert_dir is not None:
            arrays.update(load_split(self.bert_dir, name))
        return arrays

    def info(self):
        return DataInfo(task=self.cfg["data"]["task"],
                        num_categories=len(self.cfg["data"].get("categories") or []),
                        embeddings=np.load(self.dir / "embeddings.npy"),
                        sentiment=np.load(self.dir / "sentiment.npy"))

    def fingerprints(self):
        """What a checkpoint's weights depend on: the word vocabulary, or for BERT models the
        backbone's tokenizer (the word vocabulary only seeds their guide capsules)."""
        if self.bert_dir is not None:
            return {"BERT inputs": Path(self.bert_dir).name}
        return {"vocabulary": self.summary["vocab_fingerprint"]}
