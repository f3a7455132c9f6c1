"""The word-vector models of Table 3 (src/models/<name>.py) and the baselines' shared blocks
(src/blocks.py): which models see the aspect, MemNet's location weights, AT-LSTM's attention,
TextCNN's max-norm, AEN's label smoothing. Tiny sizes (conftest.tiny_model_config), CPU. The contract
every model follows (shapes, gradients, padding and batch invariance) is tests/test_models.py."""
import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import model_tasks, tiny_model_config
from data_process.fields import length_field
from src.blocks import AspectVector, RNNEncoder, WindowConv, WordEmbedding
from src.masking import masked_max, sequence_mask
from src.models import DataInfo, build_model, get_model_class
from src.models.memnet import MemNet

VOCAB, DIM, NUM_CATEGORIES = 40, 12, 4
# the fields through which a model can see the aspect (ATSA: the term; ACSA: the category)
ASPECT_FIELDS = {"aspect", "context", "left", "right", "sentence_aspect_mask", "sentence_distance", "category"}
# the models over word vectors (the BERT ones need a backbone: tests/test_bert.py)
WORD_VECTOR_MODEL_TASKS = [(name, task) for name, task in model_tasks()
                           if not get_model_class(name).inputs(tiny_model_config(name, task), task).bert]

# (sentence ids, term start, term end, category): sentences of 7, 3, 9, 5 and 2 words
EXAMPLES = [
    ([5, 6, 7, 8, 9, 10, 11], 2, 4, 0),
    ([12, 13, 14], 1, 2, 3),
    ([15, 16, 17, 18, 19, 20, 21, 22, 23], 7, 9, 1),
    ([24, 25, 26, 27, 28], 0, 1, 2),
    ([29, 30], 1, 2, 1),
]


def example_fields(tokens, start, end, category):
    """Every word-level field of one instance, as data_process/fields.py defines them."""
    return {
        "sentence": tokens,
        "aspect": tokens[start:end],
        "context": tokens[:start] + [2] + tokens[end:],
        "left": tokens[:end],
        "right": tokens[start:][::-1],
        "sentence_aspect_mask": [int(start <= i < end) for i in range(len(tokens))],
        "sentence_distance": [start - i if i < start else max(i - end + 1, 0) for i in range(len(tokens))],
        "category": category,
    }


def make_batch(fields, indices=(0, 1, 2, 3, 4), extra_pad=0, examples=EXAMPLES):
    """A batch of exactly `fields`, their length fields and `label`, trimmed to the longest real
    row, then widened by `extra_pad` zero columns on every (B, T) field."""
    rows = [example_fields(*examples[i]) for i in indices]
    batch = {}
    for name in fields:
        if name == "category":
            batch[name] = torch.tensor([r[name] for r in rows])
            continue
        width = max(len(r[name]) for r in rows)
        values = torch.zeros(len(rows), width + extra_pad, dtype=torch.long)
        for k, r in enumerate(rows):
            values[k, :len(r[name])] = torch.tensor(r[name])
        batch[name] = values
        lengths = length_field(name)
        if lengths not in batch:
            stem_field = "sentence" if lengths == "sentence_len" else name
            batch[lengths] = torch.tensor([len(r[stem_field]) for r in rows])
    batch["label"] = torch.tensor([k % 3 for k in range(len(rows))])
    return batch


def data_info(task, seed=0):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(0, 0.5, size=(VOCAB, DIM)).astype(np.float32)
    embeddings[0] = 0.0  # PAD
    return DataInfo(task=task, num_categories=NUM_CATEGORIES if task == "acsa" else 0, embeddings=embeddings,
                    sentiment=rng.normal(0, 1, size=(3, DIM)).astype(np.float32))


def make_model(name, task, seed=0, **changes):
    """The registered model `name` from its tiny config (conftest.tiny_model_config) with `changes`."""
    cfg = tiny_model_config(name, task, **changes)
    torch.manual_seed(seed)
    return build_model(name, cfg, data_info(task, seed))


def declared(model):
    return model.inputs(model.cfg, model.task).fields


def sharpen(model, factor=4.0):
    """Scale every weight but the word vectors: a tiny freshly initialised model attends almost
    uniformly, so the aspect's effect on its scores would sit near rounding error."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embedding" not in name:
                p.mul_(factor)
    return model


# --- every model, every task it supports ----------------------------------------------------------

@pytest.mark.parametrize("name,task", WORD_VECTOR_MODEL_TASKS)
def test_aspect_aware_models_change_their_scores_with_the_aspect_and_blind_ones_do_not(name, task):
    model = sharpen(make_model(name, task)).eval()
    if task == "atsa":   # same sentence, the other term
        one = [([5, 6, 7, 8, 9, 10, 11], 1, 2, 0)]
        other = [([5, 6, 7, 8, 9, 10, 11], 5, 6, 0)]
    else:                # same sentence, another category
        one = [([5, 6, 7, 8, 9, 10, 11], 1, 2, 0)]
        other = [([5, 6, 7, 8, 9, 10, 11], 1, 2, 3)]
    with torch.no_grad():
        a = model(make_batch(declared(model), indices=(0,), examples=one))
        b = model(make_batch(declared(model), indices=(0,), examples=other))
    if not ASPECT_FIELDS & set(declared(model)):
        assert torch.allclose(a, b, atol=1e-5)
    else:
        assert (a - b).abs().max() > 1e-3


# --- model-specific behaviour ----------------------------------------------------------------------

def test_memnet_location_weights_are_one_minus_distance_over_length():
    # "w1 w2 TERM w4 w5": distances 2 1 0 1 2, n = 5 -> 1 - l/n = .6 .8 1 .8 .6
    distance = torch.tensor([[2, 1, 0, 1, 2, 0, 0]])
    weights = MemNet.location_weights(distance, torch.tensor([5]))
    assert torch.allclose(weights[0, :5], torch.tensor([0.6, 0.8, 1.0, 0.8, 0.6]))


def test_memnet_memory_is_location_weighted_context_without_the_term():
    model = make_model("memnet", "atsa").eval()
    examples = [([5, 6, 7, 8, 9], 2, 3, 0)]                       # term = the third word
    batch = make_batch(declared(model), indices=(0,), examples=examples, extra_pad=2)
    memory, mask = model.memory(batch)
    vectors = model.embedding(torch.tensor([5, 6, 7, 8, 9]))
    expected = vectors * torch.tensor([0.6, 0.8, 1.0, 0.8, 0.6]).unsqueeze(-1)
    assert torch.allclose(memory[0, :5], expected)
    assert mask[0].tolist() == [True, True, False, True, True, False, False]


def test_memnet_acsa_memory_is_the_whole_unweighted_sentence():
    model = make_model("memnet", "acsa").eval()
    batch = make_batch(declared(model), indices=(0,), examples=[([5, 6, 7, 8, 9], 2, 3, 1)])
    memory, mask = model.memory(batch)
    assert torch.allclose(memory[0], model.embedding(torch.tensor([5, 6, 7, 8, 9])))
    assert mask.all()


@pytest.mark.parametrize("task", ["atsa", "acsa"])
def test_at_lstm_printed_attention_ignores_the_aspect_and_joint_attention_does_not(task):
    """M = tanh([W_h H ; W_v v_a]) adds the same aspect term to every position's score, which the
    softmax drops: AT-LSTM as printed cannot see the aspect (why `joint` is the default)."""
    examples = [([5, 6, 7, 8, 9, 10, 11], 1, 2, 0), ([5, 6, 7, 8, 9, 10, 11], 5, 6, 3)]
    for attention, blind in (("paper", True), ("joint", False)):
        model = sharpen(make_model("at-lstm", task, aspect_attention=attention)).eval()
        with torch.no_grad():
            a = model(make_batch(declared(model), indices=(0,), examples=examples))
            b = model(make_batch(declared(model), indices=(1,), examples=examples))
        if blind:
            assert torch.allclose(a, b, atol=1e-5)
        else:
            assert (a - b).abs().max() > 1e-3


def test_textcnn_output_rows_are_held_to_the_max_norm():
    model = make_model("textcnn", "acsa").eval()
    with torch.no_grad():
        model.output.weight.mul_(100.0)
        batch = make_batch(declared(model))
        scores = model(batch)
        model.cfg = dataclasses.replace(model.cfg, max_norm=None)
        unconstrained = model(batch)
        bias = model.output.bias
        # with the rows renormalised to norm 3, scores - bias shrink by 3 / |row| per class
        factor = 3.0 / model.output.weight.norm(dim=1)
    assert torch.allclose(scores - bias, (unconstrained - bias) * factor, atol=1e-4)


def test_aen_loss_applies_label_smoothing_from_its_config():
    model = make_model("aen", "atsa")
    scores, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    assert math.isclose(float(model.loss(scores, labels)),
                        float(F.cross_entropy(scores, labels, label_smoothing=0.2)), rel_tol=1e-6)
    assert model.loss(scores, labels) != F.cross_entropy(scores, labels)


def test_atae_lstm_feeds_the_aspect_with_every_word():
    at, atae = make_model("at-lstm", "atsa"), make_model("atae-lstm", "atsa")
    assert at.encoder.lstm.input_size == DIM
    assert atae.encoder.lstm.input_size == 2 * DIM


# --- shared blocks -----------------------------------------------------------------------------------

def test_aspect_vector_is_term_mean_for_atsa_and_learned_category_for_acsa():
    embedding = WordEmbedding(data_info("atsa").embeddings, freeze=False)
    atsa = AspectVector(embedding, "atsa", 0)
    ids = torch.tensor([[3, 4, 0], [7, 0, 0]])
    expected = torch.stack([embedding.weight[[3, 4]].mean(0), embedding.weight[7]])
    assert torch.allclose(atsa({"aspect": ids}), expected)
    acsa = AspectVector(embedding, "acsa", NUM_CATEGORIES)
    assert acsa({"category": torch.tensor([0, 3])}).shape == (2, DIM)
    assert acsa.category.weight.abs().max() <= 0.25
    assert AspectVector.fields("atsa") == ("aspect",) and AspectVector.fields("acsa") == ("category",)


def test_word_embedding_copies_vectors_and_can_freeze():
    vectors = data_info("atsa").embeddings
    embedding = WordEmbedding(vectors, freeze=True)
    assert not embedding.weight.requires_grad and embedding.padding_idx == 0
    assert torch.allclose(embedding.weight, torch.as_tensor(vectors))
    with torch.no_grad():
        embedding.weight.add_(1.0)
    assert np.allclose(vectors, data_info("atsa").embeddings)   # the DataInfo array is left alone


@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_encoder_last_state_is_the_last_real_one_and_padding_is_zero(bidirectional):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 4, bidirectional=bidirectional)
    inputs, lengths = torch.randn(3, 6, 5), torch.tensor([6, 2, 4])
    states, last = encoder(inputs, lengths)
    assert states.shape == (3, 6, encoder.output_size) and last.shape == (3, encoder.output_size)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_last = encoder(inputs[b:b + 1, :n], lengths[b:b + 1])
        assert torch.allclose(states[b, :n], alone[0], atol=1e-6)
        assert torch.allclose(last[b], alone_last[0], atol=1e-6)
        assert (states[b, n:] == 0).all()
        assert torch.allclose(last[b, :4], states[b, n - 1, :4], atol=1e-6)       # forward: last word
        if bidirectional:
            assert torch.allclose(last[b, 4:], states[b, 0, 4:], atol=1e-6)   # backward: first word


def test_window_conv_reads_a_sentence_shorter_than_its_filter_as_one_window():
    torch.manual_seed(0)
    conv = WindowConv(3, 2, width=5)
    vectors = torch.randn(2, 2, 3)
    vectors[1, 1:] = 0.0                                      # row 1 has one word
    out, windows = conv(vectors, torch.tensor([2, 1]))
    assert out.shape == (2, 1, 2) and windows.tolist() == [[True], [True]]
    wider, wider_windows = conv(torch.cat([vectors, torch.zeros(2, 6, 3)], dim=1), torch.tensor([2, 1]))
    assert torch.allclose(masked_max(wider, wider_windows), masked_max(out, windows), atol=1e-6)


def test_masked_max_and_sequence_mask_ignore_padding():
    mask = sequence_mask(torch.tensor([2, 0]), 3)
    assert mask.tolist() == [[True, True, False], [False, False, False]]
    values = torch.tensor([[[1.0], [-2.0], [9.0]], [[5.0], [6.0], [7.0]]])
    assert masked_max(values, mask).tolist() == [[1.0], [0.0]]
