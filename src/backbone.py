"""A local Hugging Face encoder (model.backbone: BERT, RoBERTa, DeBERTa, ELECTRA, MPNet, DistilBERT,
ALBERT, XLM-R, ...; no network access) and how models run it."""
import torch

from common.errors import UserError
from data_process.bert_inputs import resolve_backbone, uses_token_types
from data_process.fields import BertInputs, InputSpec


def load_backbone(setting):
    """The transformers AutoModel of model.backbone ("default" = the packaged MiniLM), in float32
    whatever the folder stores (transformers would keep a half-precision folder's dtype; mixed
    precision is train.amp_bf16's job, not the weights')."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = resolve_backbone(setting)
    try:
        model, info = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32,
                                                output_loading_info=True)
    except Exception as err:   # noqa: BLE001 - safetensors, pickle, zip and torch each raise their own type
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{folder}: cannot load the backbone's weights, damaged or incomplete ({first})") from None
    # a weights file that lacks tensors loads with those tensors random: refuse it (the pooler aside,
    # which masked-LM checkpoints leave out and these models do not use)
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("pooler.")]
    mismatched = [k for k, *_ in info.get("mismatched_keys", ())]
    if missing or mismatched:
        what = f"{len(missing)} weight(s) missing" if missing else f"{len(mismatched)} weight(s) of another shape"
        raise UserError(f"{folder}: its weights do not fit its config.json ({what}, e.g. "
                        f"{(missing or mismatched)[0]}); a damaged or mixed-up folder")
    return model


def bert_inputs(cfg, fields):
    """The InputSpec of a model reading sentence pairs; cfg has backbone and max_length. The token
    type field is dropped for backbones without token types."""
    if not uses_token_types(resolve_backbone(cfg.backbone)):
        fields = tuple(f for f in fields if f != "bert_token_type_ids")
    return InputSpec(fields=fields, bert=BertInputs(cfg.backbone, cfg.max_length))


def encode_pairs(backbone, batch):
    """Last-layer token states (B, T, H) for a batch of sentence pairs (padding masked out)."""
    ids = batch["bert_input_ids"]
    attention = (torch.arange(ids.size(1), device=ids.device)[None, :] < batch["bert_len"][:, None]).long()
    extra = {"token_type_ids": batch["bert_token_type_ids"]} if "bert_token_type_ids" in batch else {}
    return backbone(input_ids=ids, attention_mask=attention, **extra).last_hidden_state
