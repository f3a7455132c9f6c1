"""A local Hugging Face BERT-architecture encoder (no network access) and how models run it."""
import torch

from common.errors import UserError
from data_process.bert_inputs import resolve_bert_path
from data_process.fields import BERT_FIELDS, BertInputs, InputSpec


def load_bert(path):
    """A transformers BertModel from a local folder ("default" = the packaged MiniLM), in float32
    whatever the folder stores (transformers would keep a half-precision folder's dtype; mixed
    precision is train.amp_bf16's job, not the weights')."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = resolve_bert_path(path)
    try:
        return AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise UserError(f"{folder}: cannot load the BERT weights ({str(err).splitlines()[0]})") from None


def bert_inputs(cfg, fields=BERT_FIELDS):
    """The InputSpec of a model reading sentence pairs; cfg has bert_path and max_length."""
    return InputSpec(fields=fields, bert=BertInputs(cfg.bert_path, cfg.max_length))


def encode_pairs(bert, batch):
    """Last-layer token states (B, T, H) for a batch of sentence pairs (padding masked out)."""
    ids = batch["bert_input_ids"]
    attention = (torch.arange(ids.size(1), device=ids.device)[None, :] < batch["bert_len"][:, None]).long()
    return bert(input_ids=ids, token_type_ids=batch["bert_token_type_ids"], attention_mask=attention).last_hidden_state
