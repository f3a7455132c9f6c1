"""The preprocessing job (data_process/preprocess.py, raw_data.py) on the real MAMS-ATSA files, and
the dataset / loaders (src/dataset.py)."""
import dataclasses
import json
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import yaml

from common.errors import UserError
from conftest import compose_cfg, sentence_xml, term, write_xml
from data_process.preprocess import is_current, load_split, preprocess
from data_process.raw_data import ENV_VAR
from data_process.vocab import ASPECT, PAD, UNK
from src.dataset import ABSADataset, BucketBatchSampler, make_loader


@pytest.fixture(scope="module")
def atsa(shared_data, tmp_path_factory):
    """MAMS-ATSA preprocessed once into a tmp folder: (cfg, output folder, log lines)."""
    tmp = tmp_path_factory.mktemp("pre")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_VAR, str(shared_data))
        cfg = compose_cfg("mams-atsa", processed=tmp / "processed", runs=tmp / "runs")
        logs = []
        out = preprocess(cfg.data, cfg.paths, log=logs.append)
        yield cfg, out, logs


@pytest.mark.slow
def test_preprocess_writes_every_output_under_the_given_processed_folder(atsa):
    cfg, out, _ = atsa
    assert out.name == "mams-atsa" and str(out.parent) == cfg.paths.processed
    for name in ("train.npz", "val.npz", "test.npz", "vocab.json", "embeddings.npy", "sentiment.npy",
                 "summary.yaml"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp"))


@pytest.mark.slow
def test_preprocess_class_counts_match_the_paper(atsa):
    _, out, _ = atsa
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["splits"]["train"]["classes"] == {"positive": 3380, "negative": 2764, "neutral": 5042}
    assert summary["splits"]["val"]["classes"] == {"positive": 403, "negative": 325, "neutral": 604}
    assert summary["splits"]["test"]["classes"] == {"positive": 400, "negative": 329, "neutral": 607}
    labels = load_split(out, "train")["label"]
    assert np.bincount(labels, minlength=3).tolist() == [3380, 2764, 5042]


@pytest.mark.slow
def test_preprocess_summary_has_fingerprint_and_vocab_details(atsa):
    _, out, _ = atsa
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert isinstance(summary["fingerprint"], str) and len(summary["fingerprint"]) == 16
    assert summary["vocab_size"] == len(json.loads((out / "vocab.json").read_text()))
    assert summary["embeddings"]["dim"] == 50
    assert 0.5 < summary["embeddings"]["vocab_coverage"] <= 1.0
    assert summary["splits"]["train"]["unk_rate"] == 0.0  # min_freq 1: every train word is in the vocab


@pytest.mark.slow
def test_preprocess_second_call_does_no_work(atsa):
    cfg, out, _ = atsa
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    logs = []
    assert preprocess(cfg.data, cfg.paths, log=logs.append) == out  # ABSA_DATA_ROOT is still set by the fixture
    assert logs == [f"{out}: up to date"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.slow
def test_preprocess_is_stale_when_a_data_setting_changes(atsa):
    cfg, _, _ = atsa
    assert is_current(cfg.data, cfg.paths)
    changed = dataclasses.replace(cfg.data, min_freq=2)
    assert not is_current(changed, cfg.paths)


@pytest.mark.slow
def test_vocab_starts_with_pad_unk_aspect(atsa):
    _, out, _ = atsa
    words = json.loads((out / "vocab.json").read_text())
    assert [words[i] for i in (PAD, UNK, ASPECT)] == ["<pad>", "<unk>", "<aspect>"] and words[0] == "<pad>"
    assert len(set(words)) == len(words)


@pytest.mark.slow
def test_embeddings_have_zero_pad_row_and_sentiment_matrix_three_rows(atsa):
    _, out, _ = atsa
    matrix = np.load(out / "embeddings.npy")
    words = json.loads((out / "vocab.json").read_text())
    assert matrix.shape == (len(words), 50)
    assert np.all(matrix[PAD] == 0.0)
    sentiment = np.load(out / "sentiment.npy")
    assert sentiment.shape == (3, 50) and np.isfinite(sentiment).all()


@pytest.mark.slow
def test_sentence_aspect_mask_marks_exactly_the_term_positions(atsa):
    _, out, _ = atsa
    arrays = load_split(out, "train")
    words = json.loads((out / "vocab.json").read_text())
    for k in range(0, len(arrays["label"]), 97):
        mask = arrays["sentence_aspect_mask"][k].astype(bool)
        term_ids = arrays["sentence"][k][mask].tolist()
        assert term_ids == arrays["aspect"][k, :arrays["aspect_len"][k]].tolist()
        positions = np.flatnonzero(mask)
        assert positions.tolist() == list(range(positions[0], positions[-1] + 1))  # one contiguous run
        assert " ".join(words[i] for i in term_ids).replace(" ", "") == \
            arrays["aspect_text"][k].lower().replace(" ", "")


@pytest.mark.slow
def test_context_has_the_aspect_marker_in_place_of_the_term(atsa):
    _, out, _ = atsa
    arrays = load_split(out, "train")
    for k in range(0, len(arrays["label"]), 97):
        n, a = arrays["sentence_len"][k], arrays["aspect_len"][k]
        context = arrays["context"][k, :arrays["context_len"][k]].tolist()
        sentence = arrays["sentence"][k, :n].tolist()
        first = int(np.flatnonzero(arrays["sentence_aspect_mask"][k])[0])
        assert arrays["context_len"][k] == n - a + 1
        assert context.count(ASPECT) == 1 and context[first] == ASPECT
        assert context[:first] == sentence[:first]
        assert context[first + 1:] == sentence[first + a:]
        assert np.all(arrays["context"][k, arrays["context_len"][k]:] == PAD)


def test_missing_split_file_without_download_raises_user_error_naming_it(tmp_path, tmp_paths, monkeypatch, shared_data):
    root = tmp_path / "raw"
    (root / "MAMS-ATSA").mkdir(parents=True)
    shutil.copy(shared_data / "MAMS-ATSA" / "train.xml", root / "MAMS-ATSA" / "train.xml")
    monkeypatch.setenv(ENV_VAR, str(root))
    cfg = compose_cfg("mams-atsa", processed=tmp_paths["processed"], runs=tmp_paths["runs"],
                      overrides=["data.download=null"])
    assert cfg.data.download is None

    def no_network(*args, **kwargs):
        raise AssertionError("no download may be attempted")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(UserError) as info:
        preprocess(cfg.data, cfg.paths, log=lambda *_: None)
    message = str(info.value)
    assert str(root / "MAMS-ATSA" / "val.xml") in message and "split file not found" in message
    assert not tmp_paths["processed"].exists()


def test_missing_split_file_offline_download_fails_with_one_line_user_error(tmp_path, tmp_paths, monkeypatch):
    root = tmp_path / "raw"
    root.mkdir()
    monkeypatch.setenv(ENV_VAR, str(root))
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    cfg = compose_cfg("mams-atsa", processed=tmp_paths["processed"], runs=tmp_paths["runs"])
    logs = []
    with pytest.raises(UserError) as info:
        preprocess(cfg.data, cfg.paths, log=logs.append)
    message = str(info.value)
    assert len(calls) == 1 and calls[0].endswith("/train.xml")
    assert "\n" not in message
    assert message.startswith(f"cannot download {calls[0]} (network is unreachable); offline?")
    assert ENV_VAR in message and str(root / "MAMS-ATSA") in message
    assert logs == []
    assert not list(root.rglob("*.xml"))


def test_absa_data_root_that_is_not_a_folder_raises_user_error(tmp_path, tmp_paths, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    cfg = compose_cfg("mams-atsa", processed=tmp_paths["processed"], runs=tmp_paths["runs"])
    with pytest.raises(UserError, match=f"{ENV_VAR}=.*nowhere: folder not found"):
        preprocess(cfg.data, cfg.paths, log=lambda *_: None)


def test_preprocess_of_small_acsa_files_reads_categories(tmp_path, tmp_paths, monkeypatch):
    text = "Great food but the service was slow."
    sentences = [sentence_xml(text, categories=[("food", "positive"), ("service", "negative")]),
                 sentence_xml("The place is okay.", categories=[("place", "neutral"), ("menu", "conflict")])]
    for split in ("train", "val", "test"):
        write_xml(tmp_path / "raw" / "MAMS-ACSA" / f"{split}.xml", sentences)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "raw"))
    cfg = compose_cfg("mams-acsa", processed=tmp_paths["processed"], runs=tmp_paths["runs"])
    out = preprocess(cfg.data, cfg.paths, log=lambda *_: None)
    arrays = load_split(out, "train")
    categories = cfg.data.categories
    assert [categories[c] for c in arrays["category"]] == ["food", "service", "place"]
    assert arrays["label"].tolist() == [0, 1, 2]
    summary = yaml.safe_load((out / "summary.yaml").read_text())
    assert summary["splits"]["train"]["read"]["dropped_conflict"] == 1


def test_preprocess_holds_out_whole_sentences_when_there_is_no_val_file(tmp_path, tmp_paths, monkeypatch):
    texts = [f"The dish number {k} was good and the wine was bad." for k in range(20)]
    sentences = [sentence_xml(t, terms=[term(t, "dish", "positive"), term(t, "wine", "negative")]) for t in texts]
    for split in ("train", "test"):
        write_xml(tmp_path / "raw" / "MAMS-ATSA" / f"{split}.xml", sentences)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "raw"))
    cfg = compose_cfg("mams-atsa", processed=tmp_paths["processed"], runs=tmp_paths["runs"],
                      overrides=["data.splits=[train, test]", "data.val_fraction=0.25"])
    out = preprocess(cfg.data, cfg.paths, log=lambda *_: None)
    train, val = load_split(out, "train"), load_split(out, "val")
    assert len(val["label"]) == 10 and len(train["label"]) == 30  # 5 of 20 sentences, 2 aspects each
    assert not set(train["sentence_id"].tolist()) & set(val["sentence_id"].tolist())


# --- dataset and loaders ---------------------------------------------------------------------

def toy_arrays(n=37, width=15, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, size=n).astype(np.int32)
    sentence = np.zeros((n, width), np.int32)
    for k, length in enumerate(lengths):
        sentence[k, :length] = rng.integers(3, 50, size=length)
    aspect_len = np.minimum(lengths, rng.integers(1, 4, size=n)).astype(np.int32)
    aspect = np.zeros((n, 4), np.int32)
    for k, length in enumerate(aspect_len):
        aspect[k, :length] = sentence[k, :length]
    return {"sentence": sentence, "sentence_len": lengths, "aspect": aspect, "aspect_len": aspect_len,
            "label": rng.integers(0, 3, size=n).astype(np.int64), "text": np.array(["x"] * n)}


@pytest.mark.parametrize("bucket_chunk", [None, 2])
def test_training_loader_batches_are_trimmed_to_their_longest_real_length(bucket_chunk):
    dataset = ABSADataset(toy_arrays(), ("sentence", "aspect"))
    assert set(dataset.arrays) == {"sentence", "sentence_len", "aspect", "aspect_len", "label"}
    loader = make_loader(dataset, batch_size=8, shuffle=True, seed=0, bucket_chunk=bucket_chunk)
    seen = 0
    for batch in loader:
        assert batch["sentence"].shape[1] == int(batch["sentence_len"].max())
        assert batch["aspect"].shape[1] == int(batch["aspect_len"].max())
        assert batch["sentence"].dtype == torch.long
        seen += len(batch["label"])
    assert seen == 37


def test_eval_loader_keeps_file_order_and_trims_each_batch():
    arrays = toy_arrays()
    dataset = ABSADataset(arrays, ("sentence", "aspect"))
    batches = list(make_loader(dataset, batch_size=10))
    assert torch.cat([b["label"] for b in batches]).tolist() == arrays["label"].tolist()
    first = batches[0]
    width = int(arrays["sentence_len"][:10].max())
    assert first["sentence"].tolist() == arrays["sentence"][:10, :width].tolist()


def test_dataset_limit_keeps_the_first_instances():
    arrays = toy_arrays()
    dataset = ABSADataset(arrays, ("sentence",), limit=5)
    assert len(dataset) == 5
    assert dataset.arrays["label"].tolist() == arrays["label"][:5].tolist()


def test_dataset_missing_field_raises_key_error():
    arrays = toy_arrays()
    del arrays["aspect_len"]
    with pytest.raises(KeyError, match="aspect_len"):
        ABSADataset(arrays, ("sentence", "aspect"))


def _batches(lengths, seed, batch_size=4, chunk=3):
    generator = torch.Generator().manual_seed(seed)
    return list(BucketBatchSampler(lengths, batch_size, chunk, generator))


def test_bucket_batch_sampler_covers_every_index_exactly_once():
    lengths = np.random.default_rng(0).integers(1, 40, size=53)
    batches = _batches(lengths, seed=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(53))
    assert len(batches) == len(BucketBatchSampler(lengths, 4, 3, torch.Generator())) == 14
    assert all(1 <= len(b) <= 4 for b in batches)


def test_bucket_batch_sampler_is_deterministic_for_a_seed_and_varies_with_it():
    lengths = np.random.default_rng(0).integers(1, 40, size=53)
    assert _batches(lengths, seed=7) == _batches(lengths, seed=7)
    assert _batches(lengths, seed=7) != _batches(lengths, seed=8)


def test_bucket_batch_sampler_groups_similar_lengths_within_a_chunk():
    lengths = np.random.default_rng(1).integers(1, 100, size=48)
    batches = _batches(lengths, seed=0, batch_size=4, chunk=12)  # one chunk: a global sort
    spans = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    for (_, high), (low, _) in zip(spans, spans[1:]):
        assert high <= low


def test_vocabulary_counts_each_sentence_once_although_each_aspect_is_an_instance():
    from data_process.encode import tokenise
    from data_process.preprocess import sentence_token_counts
    from data_process.vocab import Vocab
    from data_process.xml_reader import Instance
    text = "the food was good but the decor was dull"
    instances = [Instance(0, text, "food", 4, 8, 0), Instance(0, text, "decor", 26, 31, 1),
                 Instance(1, "rare words here", "words", 5, 10, 2)]
    counts = sentence_token_counts(instances, tokenise(instances, "atsa"))
    assert counts["the"] == 2 and counts["food"] == 1 and counts["rare"] == 1
    vocab = Vocab.build(counts, min_freq=2)
    assert {"the", "was"} <= set(vocab.words) and "food" not in vocab.index and "rare" not in vocab.index


def test_atomic_writes_leave_files_with_the_usual_permissions_and_no_temp_files(tmp_path):
    import os

    from common.io import write_text
    write_text(tmp_path / "out.txt", "hello")
    mode = (tmp_path / "out.txt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_length_bucketing_uses_the_main_input_field_even_without_sentence_fields():
    arrays = toy_arrays()
    arrays["context"], arrays["context_len"] = arrays.pop("sentence"), arrays.pop("sentence_len")
    dataset = ABSADataset(arrays, ("context", "aspect"))
    assert "sentence_len" not in dataset.arrays
    assert dataset.lengths().tolist() == arrays["context_len"].tolist()
    batches = list(make_loader(dataset, batch_size=8, shuffle=True, seed=0, bucket_chunk=2))
    assert sum(len(b["label"]) for b in batches) == 37
    assert all(b["context"].shape[1] == int(b["context_len"].max()) for b in batches)
