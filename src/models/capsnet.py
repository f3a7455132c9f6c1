"""CapsNet (paper Section 3): word vectors + aspect -> BiGRU encoder -> capsule head -> class capsules.

ATSA: the aspect vector is the mean of the term's word vectors (Eq. 1); the words read are, by
default, the context (the sentence with the term replaced by an <aspect> marker, the authors' code's
input), which tells the encoder where the term is; `model.atsa_input: sentence` reads the plain
sentence. ACSA: a learned category embedding (the paper; the authors' code looked categories up in
the word table by mistake).
"""
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import UserError
from ..layers import CapsuleHead, lengths_to_probabilities, masked_mean
from ..losses import make_loss


class CapsNet(nn.Module):
    tasks = ("atsa", "acsa")

    def input_fields(self, task):
        return (self.words_field, "aspect") if task == "atsa" else ("sentence", "category")

    @classmethod
    def from_config(cls, cfg, info):
        return cls(info.embeddings, info.sentiment, info.task, info.num_categories, info.num_classes,
                   capsule_size=cfg["capsule_size"], num_layers=cfg["num_layers"], dropout=cfg["dropout"],
                   scale_init=cfg["routing_scale"], embed_projection=cfg.get("embed_projection"),
                   freeze_embeddings=cfg.get("freeze_embeddings", False), loss=cfg["loss"],
                   atsa_input=cfg.get("atsa_input", "context"))

    def __init__(self, embeddings, sentiment, task, num_categories, num_classes, capsule_size, num_layers,
                 dropout, scale_init, embed_projection=None, freeze_embeddings=False, loss=None,
                 atsa_input="context"):
        super().__init__()
        self.task = task
        if atsa_input not in ("context", "sentence"):
            raise UserError(f"model.atsa_input must be 'context' or 'sentence', not {atsa_input!r}")
        # ATSA reads the context (the term replaced by the <aspect> marker, as the authors' code does)
        # or the plain sentence; ACSA always reads the sentence.
        self.words_field = atsa_input if task == "atsa" else "sentence"
        vectors = torch.as_tensor(embeddings, dtype=torch.float32)
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=freeze_embeddings, padding_idx=0)
        word_size = vectors.size(1)
        if task == "acsa":
            self.category_embedding = nn.Embedding(num_categories, word_size)  # Eq. 1, ACSA
            nn.init.uniform_(self.category_embedding.weight, -0.25, 0.25)
        # Not the paper's design: widen word vectors before the encoder (null keeps the paper's).
        self.projection = nn.Linear(word_size, embed_projection) if embed_projection else None
        width = embed_projection or word_size
        self.dropout = nn.Dropout(dropout)
        # Eq. 2: BiGRU over [E_i ; a], hidden size = word width, plus the word-vector residual.
        self.encoder = nn.GRU(2 * width, width, num_layers=num_layers, bidirectional=True, batch_first=True)
        self.head = CapsuleHead(2 * width, width, capsule_size, num_classes, scale_init, dropout, sentiment)
        self.loss = make_loss(loss)

    def _words(self, ids):
        vectors = self.embedding(ids)
        return self.projection(vectors) if self.projection is not None else vectors

    def aspect_vector(self, batch):
        if self.task == "acsa":
            vectors = self.category_embedding(batch["category"])
            return self.projection(vectors) if self.projection is not None else vectors
        ids = batch["aspect"]
        return masked_mean(self._words(ids), ids != 0)  # mean of the term's words

    def forward(self, batch):
        ids, lengths = batch[self.words_field], batch[self.words_field + "_len"]
        mask = ids != 0
        words = self.dropout(self._words(ids))                    # (B, T, w)
        aspect = self.dropout(self.aspect_vector(batch))          # (B, w)
        inputs = torch.cat([words, aspect.unsqueeze(1).expand_as(words)], dim=-1)
        packed = pack_padded_sequence(inputs, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.encoder(packed)[0], batch_first=True, total_length=ids.size(1))
        states = self.dropout(states + words.repeat(1, 1, 2))     # residual to both directions
        return self.head(states, mask, aspect)

    probabilities = staticmethod(lengths_to_probabilities)
