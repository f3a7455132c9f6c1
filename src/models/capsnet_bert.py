"""CapsNet-BERT (paper Section 3, last paragraph): BERT over "[CLS] sentence [SEP] aspect [SEP]"
replaces the embedding and encoding layers; the sentence's token states feed the primary capsules,
the mean of the aspect's token states is the aspect vector a. The capsule layers and margin loss
are the same modules CapsNet uses (src/layers.py, src/losses.py)."""
import torch.nn as nn

from ..layers import CapsuleHead, lengths_to_probabilities, masked_mean
from ..losses import make_loss
from .backbone import BERT_FIELDS, encode_pairs, load_bert


class CapsNetBert(nn.Module):
    tasks = ("atsa", "acsa")

    def input_fields(self, task):
        return BERT_FIELDS + ("bert_sentence_mask", "bert_aspect_mask")

    @classmethod
    def from_config(cls, cfg, info):
        return cls(load_bert(cfg["bert_path"]), info.sentiment, info.num_classes, cfg["capsule_size"],
                   cfg["routing_scale"], cfg["dropout"], cfg["loss"])

    def __init__(self, bert, sentiment, num_classes, capsule_size, scale_init, dropout, loss):
        super().__init__()
        self.bert = bert
        hidden = bert.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = CapsuleHead(hidden, hidden, capsule_size, num_classes, scale_init, dropout, sentiment)
        self.loss = make_loss(loss)

    def forward(self, batch):
        states = self.dropout(encode_pairs(self.bert, batch)).float()
        aspect = masked_mean(states, batch["bert_aspect_mask"])
        return self.head(states, batch["bert_sentence_mask"].bool(), aspect)

    probabilities = staticmethod(lengths_to_probabilities)
