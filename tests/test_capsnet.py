"""CapsNet (src/models/capsnet.py) through the registry: padding and batch invariance, score range,
a training step, registry errors."""
import numpy as np
import pytest
import torch

from common.errors import UserError
from common.schema import build as build_config, to_dict
from src.models import DataInfo, build_model, get_model_class
from src.models.capsnet import CapsNet
from train.config import compose

VOCAB, WORD = 40, 12
NUM_CATEGORIES = 4


def model_cfg(**changes):
    """A checked CapsNet.Config: the values below over the model's YAML (for keys not set here)."""
    cfg = to_dict(compose("capsnet", "mams-atsa").model)
    cfg.update({"capsule_size": 16, "num_layers": 2, "dropout": 0.0, "routing_scale": 4.0,
                "embed_projection": None, "freeze_embeddings": False, "atsa_input": "context",
                "routing": "guided", "loss": {"name": "margin", "positive": 0.9, "negative": 0.1, "weight": 0.6}})
    cfg.update(changes)
    return build_config(CapsNet.Config, cfg, prefix="model")


def data_info(task, seed=0):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(0, 0.5, size=(VOCAB, WORD)).astype(np.float32)
    embeddings[0] = 0.0  # PAD row, as preprocessing writes it
    sentiment = rng.normal(0, 1, size=(3, WORD)).astype(np.float32)
    return DataInfo(task=task, num_categories=NUM_CATEGORIES if task == "acsa" else 0,
                    embeddings=embeddings, sentiment=sentiment)


def build(task, seed=0, **changes):
    torch.manual_seed(seed)
    return build_model("capsnet", model_cfg(**changes), data_info(task, seed)).eval()


def padded(rows, width=None):
    width = width or max(len(r) for r in rows)
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for k, row in enumerate(rows):
        out[k, :len(row)] = torch.tensor(row)
    return out, torch.tensor([len(r) for r in rows])


SENTENCES = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15, 16, 17, 18, 19]]
TERMS = [[7, 8], [13], [19]]
CONTEXTS = [[5, 6, 2, 9, 10, 11], [12, 2, 14], [15, 16, 17, 18, 2]]  # the term replaced by <aspect> (2)
CATEGORIES = [0, 3, 1]


def make_batch(task, indices=(0, 1, 2), extra_pad=0):
    sentence, sentence_len = padded([SENTENCES[i] for i in indices])
    batch = {"sentence": sentence, "sentence_len": sentence_len}
    if task == "atsa":
        batch["aspect"], batch["aspect_len"] = padded([TERMS[i] for i in indices])
        batch["context"], batch["context_len"] = padded([CONTEXTS[i] for i in indices])
    else:
        batch["category"] = torch.tensor([CATEGORIES[i] for i in indices])
    if extra_pad:
        for key in ("sentence", "aspect", "context"):
            if key in batch:
                batch[key] = torch.cat([batch[key], torch.zeros(len(indices), extra_pad, dtype=torch.long)], dim=1)
    batch["label"] = torch.tensor([0, 1, 2])[: len(indices)]
    return batch


@pytest.mark.parametrize("task", ["atsa", "acsa"])
def test_capsnet_scores_do_not_change_when_pad_columns_are_appended(task):
    model = build(task)
    with torch.no_grad():
        plain = model(make_batch(task))
        wider = model(make_batch(task, extra_pad=9))
    assert plain.shape == (3, 3)
    assert torch.allclose(plain, wider, atol=1e-6)


@pytest.mark.parametrize("task", ["atsa", "acsa"])
def test_capsnet_scores_of_a_sentence_do_not_depend_on_the_rest_of_the_batch(task):
    model = build(task)
    with torch.no_grad():
        alone = model(make_batch(task, indices=(1,)))          # 3 tokens, batch width 3
        together = model(make_batch(task, indices=(0, 1, 2)))  # next to a 7-token sentence
    assert torch.allclose(alone[0], together[1], atol=1e-6)


@pytest.mark.parametrize("task", ["atsa", "acsa"])
def test_capsnet_scores_are_capsule_lengths_in_zero_one(task):
    model = build(task)
    with torch.no_grad():
        scores = model(make_batch(task))
    assert torch.isfinite(scores).all()
    assert torch.all(scores >= 0.0) and torch.all(scores < 1.0)
    probs = model.probabilities(scores)
    assert torch.allclose(probs.sum(-1), torch.ones(3), atol=1e-6)
    assert torch.equal(probs.argmax(-1), scores.argmax(-1))


def test_capsnet_with_embedding_projection_is_padding_invariant():
    model = build("atsa", embed_projection=20)
    with torch.no_grad():
        assert torch.allclose(model(make_batch("atsa")), model(make_batch("atsa", extra_pad=4)), atol=1e-6)


def test_capsnet_guides_start_from_the_sentiment_matrix():
    info = data_info("atsa")
    torch.manual_seed(0)
    model = build_model("capsnet", model_cfg(capsule_size=WORD), info)
    guide = model.head.routing.guide.detach()
    expected = torch.as_tensor(info.sentiment)
    expected = (expected - expected.mean()) / expected.std()
    assert torch.allclose(guide / guide.std(), expected, atol=1e-5)


@pytest.mark.parametrize("task", ["atsa", "acsa"])
def test_one_optimiser_step_on_a_fixed_batch_lowers_the_margin_loss(task):
    model = build(task).train()  # dropout is 0, so train mode is deterministic
    batch = make_batch(task)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = model.loss(model(batch), batch["label"])
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = model.loss(model(batch), batch["label"])
    assert before.item() > 0.0
    assert after.item() < before.item()


def test_frozen_embeddings_are_not_trained():
    model = build("atsa", freeze_embeddings=True)
    assert not model.embedding.weight.requires_grad


def test_model_registry_raises_user_error_for_unknown_model():
    with pytest.raises(UserError, match="unknown model 'nope'.*capsnet"):
        get_model_class("nope")
    with pytest.raises(UserError, match="unknown model"):
        build_model("nope", model_cfg(), data_info("atsa"))


def test_model_registry_rejects_a_task_the_model_does_not_support():
    with pytest.raises(UserError, match="does not support the XYZ task"):
        build_model("capsnet", model_cfg(), DataInfo(task="xyz", embeddings=np.zeros((4, 3), np.float32)))


def test_capsnet_input_fields_per_task():
    assert build("atsa").input_fields() == ("context", "aspect")
    assert build("atsa", atsa_input="sentence").input_fields() == ("sentence", "aspect")
    assert build("acsa").input_fields() == ("sentence", "category")


@pytest.mark.parametrize("atsa_input", ["context", "sentence"])
def test_atsa_capsnet_reads_only_the_configured_word_field(atsa_input):
    model = build("atsa", atsa_input=atsa_input)
    batch = make_batch("atsa")
    other = "sentence" if atsa_input == "context" else "context"
    changed = dict(batch, **{other: torch.full_like(batch[other], 3)})
    with torch.no_grad():
        assert torch.equal(model(batch), model(changed))
        reread = dict(batch, **{atsa_input: torch.where(batch[atsa_input] > 0, 3, 0)})
        assert not torch.allclose(model(batch), model(reread))


@pytest.mark.parametrize("task", ["atsa", "acsa"])
def test_a_capsnet_state_with_the_earlier_keys_loads_with_the_same_scores(task):
    """Earlier versions stored the ACSA category embedding as `category_embedding.weight` and had no
    `aspect.embedding.weight` (AspectVector's view of the shared word embedding)."""
    from train.checkpoint import upgrade_state
    trained = build(task, seed=1)
    state = trained.state_dict()
    earlier = {("category_embedding.weight" if key == "aspect.category.weight" else key): value
               for key, value in state.items() if key != "aspect.embedding.weight"}
    assert "aspect.embedding.weight" in state and len(earlier) == len(state) - 1
    fresh = build(task, seed=2)
    fresh.load_state_dict(upgrade_state(fresh, earlier))
    batch = make_batch(task)
    with torch.no_grad():
        assert torch.equal(fresh(batch), trained(batch))
