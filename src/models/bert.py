"""BERT sentence-pair baseline (Table 3): "[CLS] sentence [SEP] aspect [SEP]" -> [CLS] state ->
dropout -> linear, cross-entropy."""
import torch
import torch.nn as nn

from ..losses import make_loss
from .backbone import BERT_FIELDS, encode_pairs, load_bert


class BertPair(nn.Module):
    tasks = ("atsa", "acsa")

    def input_fields(self, task):
        return BERT_FIELDS

    @classmethod
    def from_config(cls, cfg, info):
        return cls(load_bert(cfg["bert_path"]), info.num_classes, cfg["dropout"], cfg["loss"])

    def __init__(self, bert, num_classes, dropout, loss):
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(bert.config.hidden_size, num_classes)
        self.loss = make_loss(loss)

    def forward(self, batch):
        states = encode_pairs(self.bert, batch)
        return self.classifier(self.dropout(states[:, 0])).float()

    @staticmethod
    def probabilities(scores):
        return torch.softmax(scores, dim=-1)
