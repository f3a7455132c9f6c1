"""From the data config and a model's InputSpec to ready-to-use splits: preprocess if needed,
build the BERT fields when the model reads them, load arrays, describe the data."""
from pathlib import Path

import numpy as np
import yaml

from data_process.bert_inputs import prepare_bert_inputs
from data_process.encode import Encoder
from data_process.preprocess import load_split, preprocess, read_instances
from data_process.vocab import Vocab
from src.models import DataInfo


class PreparedData:
    """The processed arrays of one dataset, with the fields an InputSpec asks for."""

    def __init__(self, data, paths, spec, log=print, force=False):
        self.data, self.spec = data, spec
        self.dir = preprocess(data, paths, log=log, force=force)
        self.summary = yaml.safe_load((self.dir / "summary.yaml").read_text())
        self.bert_dir = None
        if spec.bert is not None:
            self.bert_dir = prepare_bert_inputs(spec.bert, self.dir, lambda: read_instances(data, paths)[0],
                                                data.task, log=log)

    def split(self, name):
        arrays = load_split(self.dir, name)
        if self.bert_dir is not None:
            arrays.update(load_split(self.bert_dir, name))
        return arrays

    def info(self):
        return DataInfo(task=self.data.task, num_categories=len(self.data.categories or ()),
                        embeddings=np.load(self.dir / "embeddings.npy"),
                        sentiment=np.load(self.dir / "sentiment.npy"))

    def encoder(self):
        """The encoder that made these arrays, for new text (predict)."""
        return Encoder(Vocab.load(self.dir / "vocab.json"), self.data.task, self.data.categories,
                       self.data.lowercase, self.spec.bert)

    def inference_state(self):
        """What a checkpoint stores to encode new text and rebuild its model without this data:
        the encoder's state and the shapes of the DataInfo arrays (the weights are loaded over them)."""
        info = self.info()
        return {"encoder": self.encoder().state(),
                "data_info": {"task": info.task, "num_classes": info.num_classes,
                              "num_categories": info.num_categories,
                              "embeddings_shape": list(info.embeddings.shape),
                              "sentiment_shape": list(info.sentiment.shape)}}

    def fingerprints(self):
        """What a checkpoint's weights depend on: the word vocabulary, or for BERT models the
        backbone's tokenizer (the word vocabulary only seeds their guide capsules)."""
        if self.bert_dir is not None:
            return {"BERT inputs": Path(self.bert_dir).name}
        return {"vocabulary": self.summary["vocab_fingerprint"]}
