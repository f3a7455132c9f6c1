"""Loading a local Hugging Face BERT-architecture encoder (no network access)."""
import torch

from data_process.bert_inputs import resolve_bert_path
from src.errors import UserError

BERT_FIELDS = ("bert_input_ids", "bert_token_type_ids")


def load_bert(path):
    """A transformers BertModel from a local folder ("default" = the packaged MiniLM)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = resolve_bert_path(path)
    try:
        return AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise UserError(f"{folder}: cannot load the BERT weights ({str(err).splitlines()[0]})") from None


def encode_pairs(bert, batch):
    """Last-layer token states (B, T, H) for a batch of sentence pairs (padding masked out)."""
    ids = batch["bert_input_ids"]
    attention = (torch.arange(ids.size(1), device=ids.device)[None, :] < batch["bert_len"][:, None]).long()
    return bert(input_ids=ids, token_type_ids=batch["bert_token_type_ids"], attention_mask=attention).last_hidden_state
