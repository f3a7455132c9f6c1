"""The backbone models (bert, capsnet-bert, capsnet-bert-dr) on every encoder architecture: for each, a
tiny randomly initialised model and a tokenizer trained here on a few sentences with the `tokenizers`
library, saved with save_pretrained to a temporary folder (nothing is downloaded)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.errors import UserError
from common.schema import build as build_config, to_dict
from data_process.bert_inputs import (
    aspect_words,
    build_pairs,
    load_tokenizer,
    max_pair_length,
    pair_template,
    resolve_backbone,
    uses_token_types,
)
from data_process.xml_reader import Instance
from src.dataset import ABSADataset
from src.models import DataInfo, build_model, get_model_class
from train.config import compose

SENTENCES = ["the food is great but the service was slow", "the decor is not special at all but their food is amazing",
             "great prices and friendly staff", "la comida es excelente pero el servicio es lento",
             "das essen war gut aber der service langsam", "service was slow"] * 2
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
ARCHITECTURES = ("bert", "roberta", "deberta-v2", "electra", "mpnet", "distilbert", "albert", "xlm-roberta")
MODELS = ("bert", "capsnet-bert", "capsnet-bert-dr")


def wordpiece_vocab(special):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    tok = Tokenizer(models.WordPiece(unk_token=special[1]))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(SENTENCES, trainers.WordPieceTrainer(vocab_size=150, special_tokens=special))
    return tok.get_vocab()


def bpe_vocab():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(SENTENCES, trainers.BpeTrainer(vocab_size=320, special_tokens=ROBERTA_SPECIAL,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]


def unigram_vocab(special, unk):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(SENTENCES, trainers.UnigramTrainer(vocab_size=120, special_tokens=special, unk_token=unk))
    return [tuple(v) for v in json.loads(tok.to_str())["model"]["vocab"]]


def tokenizer_and_config(name):
    import transformers as T
    if name in ("bert", "electra", "distilbert"):
        tokenizer = {"bert": T.BertTokenizer, "electra": T.ElectraTokenizer,
                     "distilbert": T.DistilBertTokenizer}[name](vocab=wordpiece_vocab(BERT_SPECIAL))
    elif name == "mpnet":
        tokenizer = T.MPNetTokenizer(vocab=wordpiece_vocab(["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]))
    elif name == "roberta":
        tokenizer = T.RobertaTokenizer(*bpe_vocab())
    elif name == "xlm-roberta":
        tokenizer = T.XLMRobertaTokenizer(vocab=unigram_vocab(ROBERTA_SPECIAL, "<unk>"))
    elif name == "albert":
        tokenizer = T.AlbertTokenizer(vocab=unigram_vocab(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], "<unk>"))
    else:
        tokenizer = T.DebertaV2Tokenizer(vocab=unigram_vocab(BERT_SPECIAL, "[UNK]"))
    n = len(tokenizer)
    config = {
        "bert": lambda: T.BertConfig(vocab_size=n, max_position_embeddings=64, **SMALL),
        "electra": lambda: T.ElectraConfig(vocab_size=n, embedding_size=16, max_position_embeddings=64, **SMALL),
        "distilbert": lambda: T.DistilBertConfig(vocab_size=n, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                 max_position_embeddings=64),
        "mpnet": lambda: T.MPNetConfig(vocab_size=n, max_position_embeddings=66, **SMALL),
        "roberta": lambda: T.RobertaConfig(vocab_size=n, max_position_embeddings=66, type_vocab_size=1, **SMALL),
        "xlm-roberta": lambda: T.XLMRobertaConfig(vocab_size=n, max_position_embeddings=66, type_vocab_size=1, **SMALL),
        "albert": lambda: T.AlbertConfig(vocab_size=n, embedding_size=16, max_position_embeddings=64, **SMALL),
        "deberta-v2": lambda: T.DebertaV2Config(vocab_size=n, max_position_embeddings=64, type_vocab_size=0, **SMALL),
    }[name]()
    return tokenizer, config


@pytest.fixture(scope="module", params=ARCHITECTURES)
def encoder(request, tmp_path_factory):
    """(architecture name, folder) of a tiny saved encoder."""
    from transformers import AutoModel
    tokenizer, config = tokenizer_and_config(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return request.param, folder


def pairs(folder, texts, aspects, max_length=32, task="atsa"):
    instances = [Instance(sentence_id=k, text=text, aspect=aspect, start=-1, end=-1, label=0)
                 for k, (text, aspect) in enumerate(zip(texts, aspects))]
    return build_pairs(load_tokenizer(folder), instances, task, max_length, uses_token_types(folder))


def pieces(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_masks_cover_exactly_the_sentence_and_the_aspect_pieces(encoder):
    name, folder = encoder
    tok = load_tokenizer(folder)
    texts, aspects = ["the food is great", "the decor is not special at all but their food"], ["food", "decor"]
    arrays, truncated = pairs(folder, texts, aspects, max_length=64)
    assert truncated == 0
    for k, (text, aspect) in enumerate(zip(texts, aspects)):
        n = int(arrays["bert_len"][k])
        ids = arrays["bert_input_ids"][k]
        expected = tok(text, aspect)["input_ids"]   # the tokenizer's own pair template
        assert ids[:n].tolist() == expected and (ids[n:] == tok.pad_token_id).all()
        sentence, term = arrays["bert_sentence_mask"][k], arrays["bert_aspect_mask"][k]
        assert ids[sentence == 1].tolist() == pieces(tok, text)
        assert ids[aspect_positions := np.flatnonzero(term)].tolist() == tok(text, aspect)["input_ids"][
            aspect_positions[0]:aspect_positions[-1] + 1]
        assert sentence[n:].sum() == 0 and term[n:].sum() == 0 and not (sentence & term).any()
        specials = set(tok.all_special_ids)
        assert all(int(i) in specials for i in ids[:n][(sentence[:n] | term[:n]) == 0])


def test_token_types_only_for_backbones_that_have_them(encoder):
    name, folder = encoder
    arrays, _ = pairs(folder, ["the food is great"], ["food"])
    has_types = name in ("bert", "electra")   # type_vocab_size 2 and a tokenizer that returns them
    assert uses_token_types(folder) == has_types and ("bert_token_type_ids" in arrays) == has_types
    if has_types:
        types, term = arrays["bert_token_type_ids"][0], arrays["bert_aspect_mask"][0]
        assert (types[term == 1] == 1).all() and (types[arrays["bert_sentence_mask"][0] == 1] == 0).all()


def test_truncation_cuts_the_sentence_and_keeps_the_whole_aspect(encoder):
    name, folder = encoder
    tok = load_tokenizer(folder)
    arrays, truncated = pairs(folder, [" ".join(["the food is great"] * 20)], ["decor service"], max_length=16)
    ids, term = arrays["bert_input_ids"][0], arrays["bert_aspect_mask"][0]
    assert truncated == 1 and arrays["bert_len"][0] == 16
    full = tok("the food is great", "decor service")["input_ids"]
    aspect_ids = [i for i, s in zip(full, tok("the food is great", "decor service").sequence_ids()) if s == 1]
    assert ids[term == 1].tolist() == aspect_ids


def test_position_table_caps_max_length(encoder):
    name, folder = encoder
    # RoBERTa-style position ids start after the padding index: 66 positions hold 64 pieces
    assert max_pair_length(folder, 512) == 64


def test_acsa_category_is_written_as_words():
    assert aspect_words("anecdotes/miscellaneous", "acsa") == "anecdotes miscellaneous"
    assert aspect_words("peanut butter roll", "atsa") == "peanut butter roll"


def _model(name, folder, dropout=0.1):
    cfg = to_dict(compose(name, "mams-atsa").model)  # the model's YAML for keys not set here
    cfg.update({"backbone": str(folder), "max_length": 40, "dropout": dropout})
    if name != "bert":
        cfg.update(capsule_size=16)
    cfg = build_config(get_model_class(name).Config, cfg, prefix="model")
    torch.manual_seed(0)
    return build_model(name, cfg, DataInfo(task="atsa", sentiment=np.random.default_rng(0).normal(size=(3, 8))))


def _batch(folder, fields, extra_pad=0):
    arrays, _ = pairs(folder, ["the decor is not special at all but their food is amazing",
                               "service was slow", "great prices"], ["decor", "service", "prices"], max_length=40)
    arrays["label"] = np.array([1, 1, 0])
    batch = ABSADataset(arrays, fields).collate([0, 1, 2])
    if extra_pad:
        for name in [f for f in batch if f.startswith("bert_") and f != "bert_len"]:
            batch[name] = torch.cat([batch[name], torch.zeros(3, extra_pad, dtype=batch[name].dtype)], dim=1)
    return batch


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_lowers_the_loss_and_padding_changes_no_output(encoder, name):
    folder = encoder[1]
    model = _model(name, folder, dropout=0.0)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = _batch(folder, model.input_fields())
    optimizer = torch.optim.Adam(model.parameter_groups(1e-3))
    model.train()
    before = model.loss(model(batch), batch["label"])
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model.loss(model(batch), batch["label"])
        padded = model(_batch(folder, model.input_fields(), extra_pad=5))
        assert torch.allclose(model(batch), padded, atol=1e-5)
    assert after.item() < before.item()


def test_head_lr_sets_the_capsule_head_apart_from_the_backbone(encoder):
    model = _model("capsnet-bert", encoder[1])
    backbone, head = model.parameter_groups(2e-5)
    assert backbone["lr"] == 2e-5 and head["lr"] == model.cfg.head_lr
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.bert.parameters()}


def test_bf16_autocast_forward_and_loss_are_finite(encoder):
    model = _model("capsnet-bert", encoder[1]).eval()
    batch = _batch(encoder[1], model.input_fields())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(model(batch), batch["label"])
    assert torch.isfinite(loss)


def test_hidden_size_is_read_from_the_backbone(encoder):
    assert _model("capsnet-bert", encoder[1]).head.primary.in_features == 32
    assert _model("bert", encoder[1]).classifier.in_features == 32


def test_a_decoder_only_folder_is_one_user_error(tmp_path):
    from transformers import GPT2Config, GPT2Model
    GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, n_positions=32)).save_pretrained(tmp_path)
    with pytest.raises(UserError, match=f"{tmp_path}: model_type 'gpt2' is not an encoder"):
        resolve_backbone(str(tmp_path))


def test_a_seq2seq_folder_is_one_user_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(UserError, match="seq2seq"):
        resolve_backbone(str(tmp_path))


def test_a_folder_without_a_tokenizer_is_one_user_error(tmp_path):
    import transformers as T
    T.BertModel(T.BertConfig(vocab_size=20, max_position_embeddings=16, **SMALL)).save_pretrained(tmp_path)
    with pytest.raises(UserError, match=f"{tmp_path}: no tokenizer files"):
        load_tokenizer(resolve_backbone(str(tmp_path)))


def test_a_missing_folder_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match="backbone folder not found"):
        resolve_backbone(str(tmp_path / "nowhere"))


def test_the_named_mpnet_backbone_before_assembly_says_how_to_assemble_it(monkeypatch, tmp_path):
    from data_process import backbones
    monkeypatch.setattr(backbones, "BACKBONE_DIR", tmp_path)
    with pytest.raises(UserError, match="python -m data_process.backbones mpnet"):
        resolve_backbone("mpnet")


def test_assembly_checks_the_sha256_and_is_idempotent(tmp_path):
    import hashlib
    import zipfile

    from data_process.backbones import DONE, PartedBackbone, assemble
    with zipfile.ZipFile(tmp_path / "whole.zip", "w") as archive:
        archive.writestr("enc/config.json", "{}")
        archive.writestr("enc/desktop.ini", "junk")
    data = (tmp_path / "whole.zip").read_bytes()
    parts = []
    for k, start in enumerate(range(0, len(data), 100)):
        parts.append(tmp_path / f"whole.zip.{k:03d}")
        parts[-1].write_bytes(data[start:start + 100])
    wrong = PartedBackbone("enc", "r.txt", (), "0" * 64)
    with pytest.raises(UserError, match="SHA-256"):
        assemble(wrong, parts, tmp_path / "out" / "enc", log=lambda _: None)
    assert not (tmp_path / "out" / "enc").exists() and not list((tmp_path / "out").iterdir())
    right = PartedBackbone("enc", "r.txt", (), hashlib.sha256(data).hexdigest())
    target = assemble(right, parts, tmp_path / "out" / "enc", log=lambda _: None)
    assert sorted(p.name for p in target.iterdir()) == sorted(["config.json", DONE])
    said = []
    assemble(right, [], target, log=said.append)   # the second time reads no part
    assert said == [f"{target}: already assembled"]


def test_default_backbone_is_the_packaged_minilm_with_the_bert_template():
    folder = resolve_backbone("default")
    assert json.loads((folder / "config.json").read_text())["hidden_size"] == 384
    assert pair_template(load_tokenizer(folder)) == "[CLS] sentence [SEP] aspect [SEP]"


def test_default_minilm_pairs_keep_the_hand_built_bert_layout():
    """[CLS] sentence [SEP] aspect [SEP], token types 0 then 1 from the aspect on, the sentence cut
    from the end to fit: the layout the arrays had before the tokenizer's template built them."""
    folder = resolve_backbone("default")
    tok = load_tokenizer(folder)
    texts, aspects = ["The decor is not special at all but their food is amazing.", "Service was slow"], \
        ["decor", "service staff"]
    for max_length in (64, 12):
        arrays, truncated = pairs(folder, texts, aspects, max_length=max_length)
        for k, (text, aspect) in enumerate(zip(texts, aspects)):
            term = pieces(tok, aspect)
            sent = pieces(tok, text)[:max_length - len(term) - 3]
            row = [tok.cls_token_id, *sent, tok.sep_token_id, *term, tok.sep_token_id]
            n = len(row)
            assert arrays["bert_len"][k] == n and arrays["bert_input_ids"][k, :n].tolist() == row
            assert arrays["bert_token_type_ids"][k, :n].tolist() == [0] * (len(sent) + 2) + [1] * (len(term) + 1)
            assert np.flatnonzero(arrays["bert_sentence_mask"][k]).tolist() == list(range(1, 1 + len(sent)))
            assert np.flatnonzero(arrays["bert_aspect_mask"][k]).tolist() == list(range(len(sent) + 2, n - 1))
        assert truncated == (0 if max_length == 64 else 1)


def _run(args, env, cwd):
    return subprocess.run([sys.executable, "main.py", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_predict_and_explain_from_the_lone_checkpoint(encoder, name, tmp_path):
    """Train a few steps on tiny MAMS-shaped data, then predict and explain from the checkpoint file alone."""
    from data_process.encode import Encoder
    from data_process.vocab import SPECIALS, Vocab
    from train.checkpoint import save_checkpoint
    from train.inference.api import SentimentClassifier
    arch, folder = encoder
    model = _model(name, folder)
    spec = model.inputs(model.cfg, "atsa")
    encoder_ = Encoder(Vocab([*SPECIALS, "the", "food"]), "atsa", None, True, spec.bert)
    config = compose(name, "mams-atsa", overrides=[f"model.backbone={folder}", "model.max_length=40",
                                                   "model.capsule_size=16"] if name != "bert" else
                     [f"model.backbone={folder}", "model.max_length=40"]).to_dict()
    from data_process.bert_inputs import backbone_key
    data_info = {"task": "atsa", "num_classes": 3, "num_categories": 0, "embeddings_shape": [2, 8],
                 "sentiment_shape": [3, 8]}
    save_checkpoint(tmp_path / "c.pt", model, config, {"BERT inputs": backbone_key(folder)},
                    {"encoder": encoder_.state(), "data_info": data_info})
    clf = SentimentClassifier.load(tmp_path / "c.pt")
    for (key, value), loaded in zip(model.state_dict().items(), clf.model.state_dict().values()):
        assert torch.equal(value, loaded), key
    text = "the food is great"   # short enough for every tiny tokenizer within max_length
    (row,) = clf.predict([(text, "food")])
    assert row["label"] in ("positive", "negative", "neutral")
    if name != "bert":
        view = clf.explain(text, "food")
        tok = load_tokenizer(folder)
        for heat_map in view["weights"]:   # the sentence's pieces, as the tokenizer writes them
            assert heat_map["words"] == tok.convert_ids_to_tokens(pieces(tok, text))


def test_a_checkpoint_refuses_a_backbone_folder_with_another_tokenizer(tmp_path, tiny_bert):
    from data_process.encode import Encoder
    from data_process.vocab import SPECIALS, Vocab
    from train.checkpoint import save_checkpoint
    from train.inference.api import SentimentClassifier
    model = _model("bert", tiny_bert)
    config = compose("bert", "mams-atsa", overrides=[f"model.backbone={tiny_bert}"]).to_dict()
    encoder_ = Encoder(Vocab([*SPECIALS, "the"]), "atsa", None, True, model.inputs(model.cfg, "atsa").bert)
    save_checkpoint(tmp_path / "c.pt", model, config, {"BERT inputs": "another-tokenizer-0123456789"},
                    {"encoder": encoder_.state(), "data_info": {"task": "atsa", "num_classes": 3, "num_categories": 0,
                                                                "embeddings_shape": [1, 8], "sentiment_shape": [3, 8]}})
    with pytest.raises(UserError, match="trained with the tokenizer another-tokenizer-0123456789"):
        SentimentClassifier.load(tmp_path / "c.pt")


@pytest.mark.slow
@pytest.mark.parametrize("name,dataset,aspects", [("capsnet-bert", "mams-atsa", ["decor", "food"]),
                                                    ("bert", "mams-acsa", ["ambience", "food"])])
def test_bert_models_train_test_and_predict_end_to_end_on_real_mams(tiny_bert, shared_data, repo_root, tmp_path,
                                                                    name, dataset, aspects):
    env = dict(os.environ, ABSA_DATA_ROOT=str(shared_data))
    common = ["--model", name, "--dataset", dataset, "--device", "cpu", "--set", f"model.backbone={tiny_bert}",
              "--set", f"paths.processed={tmp_path / 'processed'}", "--set", f"paths.runs={tmp_path / 'runs'}"]
    train = _run(["--mode", "train", *common, "--set", "data.limit=64", "--set", "train.max_steps=3",
                  "--set", "train.epochs=1"], env, repo_root)
    assert train.returncode == 0, train.stderr
    run = tmp_path / "runs" / dataset / name / "seed0"
    written = {p.name for p in run.iterdir()}
    assert {"checkpoint.pt", "metrics.json", "curves.png", "confusion.png", "train.log"} <= written
    assert list((tmp_path / "processed" / dataset / "bert").glob("*/summary.yaml"))
    test = _run(["--mode", "test", *common, "--set", "data.limit=64"], env, repo_root)
    assert test.returncode == 0, test.stderr
    result = json.loads(test.stdout.strip().splitlines()[-1])
    assert 0 <= result["accuracy"] <= 100 and 0 <= result["macro_f1"] <= 100
    args = ["--mode", "predict", *common, "--text", "The decor is not special at all but their food is amazing."]
    for aspect in aspects:
        args += ["--aspect", aspect]
    predicted = _run(args, env, repo_root)
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert [r["aspect"] for r in lines] == aspects
    labels = {"positive", "negative", "neutral"}
    assert all(r["label"] in labels and set(r["scores"]) == labels for r in lines)


@pytest.mark.slow
def test_xlm_roberta_trains_predicts_and_explains_on_own_spanish_reviews(repo_root, tmp_path):
    """The multilingual path of docs/BACKBONES.md: own data in another language (--dataset FOLDER), an
    XLM-R folder as the backbone, train, then predict and explain from the run's checkpoint."""
    from transformers import AutoModel
    tokenizer, config = tokenizer_and_config("xlm-roberta")
    backbone = tmp_path / "xlm-r"
    tokenizer.save_pretrained(backbone)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(backbone)
    reviews = tmp_path / "resenas"
    reviews.mkdir()
    lines = [{"text": "la comida es excelente pero el servicio es lento",
              "aspects": [{"term": "comida", "from": 3, "to": 9, "polarity": "positive"},
                          {"term": "servicio", "from": 31, "to": 39, "polarity": "negative"}]},
             {"text": "el servicio es normal", "aspects": [{"term": "servicio", "from": 3, "to": 11,
                                                            "polarity": "neutral"}]}] * 8
    for split in ("train", "val", "test"):
        (reviews / f"{split}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = dict(os.environ)
    common = ["--model", "capsnet-bert", "--dataset", str(reviews), "--device", "cpu",
              "--set", f"model.backbone={backbone}", "--set", "model.capsule_size=16",
              "--set", f"paths.processed={tmp_path / 'processed'}", "--set", f"paths.runs={tmp_path / 'runs'}"]
    train = _run(["--mode", "train", *common, "--set", "train.max_steps=2", "--set", "train.epochs=1"], env, repo_root)
    assert train.returncode == 0, train.stderr
    text = "la comida es excelente pero el servicio es lento"
    predicted = _run(["--mode", "predict", *common, "--text", text, "--aspect", "servicio"], env, repo_root)
    assert len(list((tmp_path / "runs").glob("user-resenas-*/capsnet-bert/seed0/checkpoint.pt"))) == 1
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout.strip().splitlines()[-1])["aspect"] == "servicio"
    explained = _run(["--mode", "explain", *common, "--text", text, "--aspect", "servicio"], env, repo_root)
    assert explained.returncode == 0, explained.stderr
    view = json.loads(explained.stdout.strip().splitlines()[-1])
    assert view["weights"][0]["words"] == tokenizer.convert_ids_to_tokens(pieces(tokenizer, text))
