"""The fast substitutes (src/kernels/) and the build step that swaps them in (train/kernels.py).

Each substitute computes what its readable module computes -- outputs and every parameter and
input gradient, over padded batches of different lengths (float64 tight, float32 close) -- and a
failure names the substitute to update. The swap keeps parameters and state_dict keys, applies a
substitute only where it computes the module's function, and `reference` leaves the readable code;
a checkpoint gives the same predictions under either."""
import copy
import dataclasses

import pytest
import torch

from common.errors import UserError
from conftest import compose_cfg, model_setup, model_tasks, tiny_capsnet
from src.blocks import BiGRU, RNNEncoder
from src.dataset import ABSADataset, make_eval_loader, make_loader
from src.kernels import SUBSTITUTES, FastBiGRU, FastCapsuleHead, FastRNNEncoder
from src.kernels.gru import bidirectional_gru, held_state_gru, stepwise_gru
from src.kernels.lstm import reset_state_lstm
from src.layers import CapsuleGuidedRouting, CapsuleHead
from train.checkpoint import load_checkpoint, save_checkpoint
from train.cuda_graphs import can_use
from train.inference.api import SentimentClassifier
from train.kernels import substituted, use_kernels
from train.trainer import make_optimizer, predict_scores, train_step

TOLERANCE = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def compare(got, expected, names, substitute, reference, dtype):
    assert len(got) == len(expected) == len(names)
    for name, a, b in zip(names, got, expected):
        torch.testing.assert_close(
            a, b, **TOLERANCE[dtype],
            msg=lambda m, name=name: f"{substitute} no longer matches {reference} ({name}, {dtype}): update it\n{m}")


def lengths_mask(lengths, steps):
    return torch.arange(steps)[None, :] < lengths[:, None]


def with_garbage_padding(x, lengths, value=3.0):
    """x with a non-zero value past each row's length (what sits there must change nothing)."""
    x = x.clone()
    x[~lengths_mask(lengths, x.size(1))] = value
    return x


def swapped(module, choice):
    """A deep copy of `module` (a model or a lone module) running `choice`'s implementation."""
    return use_kernels(copy.deepcopy(module), choice)


# --- the build step: train/kernels.py --------------------------------------------------------------

def test_fast_swaps_each_module_for_its_substitute_in_place_with_the_same_state_dict():
    cfg = compose_cfg(overrides=["model.capsule_size=16"])        # capsules wider than the 12-d states
    model = tiny_capsnet(cfg)[0]
    parameters, state = list(model.parameters()), model.state_dict()
    encoder, head = model.encoder, model.head
    assert substituted(model) == {}
    use_kernels(model, "fast")
    assert substituted(model) == {"encoder": "FastBiGRU", "head": "FastCapsuleHead"}
    assert model.encoder is encoder and model.head is head                   # the same module objects
    assert all(a is b for a, b in zip(model.parameters(), parameters))       # an optimiser keeps them
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    use_kernels(model, "reference")
    assert substituted(model) == {} and type(model.encoder) is BiGRU and type(model.head) is CapsuleHead


def test_a_substitute_is_swapped_in_only_where_it_computes_the_modules_function():
    heads = {"states wider than the capsules": CapsuleHead(600, 300, 300, 3, 4.0, 0.0),
             "dynamic routing": CapsuleHead(10, 5, 16, 3, 4.0, 0.0, routing="dynamic"),
             "capsule dropout": CapsuleHead(10, 5, 16, 3, 4.0, 0.0, capsule_dropout=0.1)}
    for why, head in heads.items():
        assert type(use_kernels(head, "fast")) is CapsuleHead, why
    assert type(use_kernels(CapsuleHead(10, 5, 16, 3, 4.0, 0.0), "fast")) is FastCapsuleHead
    gru = BiGRU(4, 3, num_layers=2)
    gru.dropout = 0.2                                       # dropout between layers: not supported
    assert type(use_kernels(gru, "fast")) is BiGRU
    encoder = RNNEncoder(4, 3)
    encoder.lstm = torch.nn.LSTM(4, 3, num_layers=2, batch_first=True)
    assert type(use_kernels(encoder, "fast")) is RNNEncoder


def test_every_substitute_subclasses_the_module_it_replaces_and_overrides_forward_only():
    for readable, fast in SUBSTITUTES.items():
        assert fast.__bases__ == (readable,)
        assert set(vars(fast)) - {"__module__", "__doc__", "__qualname__", "__firstlineno__",
                                  "__static_attributes__"} == {"applies", "forward"}, fast


def test_an_unknown_choice_is_refused_and_the_config_key_takes_fast_or_reference_only():
    with pytest.raises(ValueError, match="'quick' is not one of fast, reference"):
        use_kernels(torch.nn.Linear(2, 2), "quick")
    assert compose_cfg().train.kernels == "fast"
    assert compose_cfg(overrides=["train.kernels=reference"]).train.kernels == "reference"
    with pytest.raises(UserError, match="train.kernels"):
        compose_cfg(overrides=["train.kernels=quick"])


def test_cuda_graphs_are_chosen_only_with_the_fast_kernels():
    cfg = compose_cfg()
    model = tiny_capsnet(cfg)[0]
    cuda = torch.device("cuda")          # can_use only reads the device's type
    assert can_use(model, cfg.train, cuda)
    reference = compose_cfg(overrides=["train.kernels=reference"]).train
    assert not can_use(model, reference, cuda)


@pytest.mark.parametrize("choice, expected", [
    ("reference", {}), ("fast", {"encoder": "FastBiGRU", "head": "FastCapsuleHead"})])
def test_a_classifier_runs_the_implementation_its_run_was_trained_with(choice, expected):
    cfg = compose_cfg(overrides=[f"train.kernels={choice}"])
    model = use_kernels(tiny_capsnet(cfg)[0], "fast" if choice == "reference" else "reference")
    assert substituted(SentimentClassifier(model, None, cfg, torch.device("cpu")).model) == expected


# --- src/kernels/gru.py: FastBiGRU for BiGRU (CapsNet's encoder, Eq. 2) ---------------------------

GRU_KERNELS = {"src/kernels/gru.py stepwise_gru (CPU)": stepwise_gru,
               "src/kernels/gru.py held_state_gru (CUDA, on the CPU's kernel)": held_state_gru,
               "src/kernels/gru.py FastBiGRU": None}


def bigru_outputs_and_gradients(gru, run, words, lengths, aspect, weights):
    gru.zero_grad()
    words, aspect = words.detach().requires_grad_(), aspect.detach().requires_grad_()
    out = run(words, aspect)
    (out * weights).sum().backward()
    return [out.detach(), words.grad, aspect.grad] + [p.grad for p in gru.parameters()]


@pytest.mark.parametrize("kernel", GRU_KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("steps, lengths, num_layers", [
    (6, [6, 3, 1, 4], 2),        # CapsNet's shape: 2 layers
    (6, [2, 6, 6, 5], 1),
    (5, [5, 0, 2, 5], 3),        # an empty row reads one (padding) step, as the packed GRU does
    (1, [1, 1, 1, 0], 2),        # one step: W_hh gets no gradient from h_0 = 0
])
def test_the_bigru_substitute_matches_the_packed_bigru_with_all_gradients(kernel, dtype, steps, lengths, num_layers):
    torch.manual_seed(0)
    width = 5
    gru = BiGRU(2 * width, width, num_layers).to(dtype).train()
    lengths = torch.tensor(lengths)
    words = with_garbage_padding(torch.randn(len(lengths), steps, width, dtype=dtype), lengths)
    aspect = torch.randn(len(lengths), width, dtype=dtype)
    weights = torch.randn(len(lengths), steps, 2 * width, dtype=dtype)
    fast = swapped(gru, "fast")
    assert type(fast) is FastBiGRU
    function = GRU_KERNELS[kernel]
    run = (lambda w, a: fast(w, lengths, a)) if function is None else \
        (lambda w, a: function(fast, w, lengths.clamp(min=1), a))
    expected = bigru_outputs_and_gradients(gru, lambda w, a: gru(w, lengths, a), words, lengths, aspect, weights)
    got = bigru_outputs_and_gradients(fast, run, words, lengths, aspect, weights)
    names = ["states", "words' gradient", "aspect's gradient"] + [n for n, _ in gru.named_parameters()]
    compare(got, expected, names, kernel, "BiGRU's packed nn.GRU (src/blocks.py, Eq. 2)", dtype)


def test_the_bigru_kernel_refuses_a_gru_with_dropout_between_layers():
    gru = torch.nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2)
    with pytest.raises(ValueError, match="dropout between its layers"):
        bidirectional_gru(gru, torch.randn(2, 3, 4), torch.tensor([3, 2]))


# --- src/kernels/lstm.py: FastRNNEncoder for RNNEncoder (the baselines' (Bi)LSTM) -----------------

def lstm_outputs_and_gradients(encoder, inputs, lengths, weights):
    encoder.zero_grad()
    inputs = inputs.detach().requires_grad_()
    states, last = encoder(inputs, lengths)
    ((states * weights).sum() + (last * last).sum()).backward()
    return [states.detach(), last.detach(), inputs.grad] + [p.grad for p in encoder.parameters()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("steps, lengths", [(6, [6, 3, 1, 4]), (5, [5, 0, 2, 5]), (1, [1, 1, 0])])
def test_the_rnn_encoder_substitute_matches_the_packed_nn_lstm_with_all_gradients(steps, lengths, bidirectional,
                                                                                  dtype):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 4, bidirectional=bidirectional).to(dtype).train()
    fast = swapped(encoder, "fast")
    assert type(fast) is FastRNNEncoder
    lengths = torch.tensor(lengths)
    inputs = with_garbage_padding(torch.randn(len(lengths), steps, 5, dtype=dtype), lengths)
    weights = torch.randn(len(lengths), steps, encoder.output_size, dtype=dtype)
    expected = lstm_outputs_and_gradients(encoder, inputs, lengths, weights)
    got = lstm_outputs_and_gradients(fast, inputs, lengths, weights)
    names = ["states", "last states", "inputs' gradient"] + [n for n, _ in encoder.named_parameters()]
    compare(got, expected, names, "src/kernels/lstm.py FastRNNEncoder", "RNNEncoder's packed nn.LSTM", dtype)
    assert not got[0][~lengths_mask(lengths.clamp(min=1), steps)].any()     # zero on padding


def test_the_reset_state_lstm_takes_one_layer_only():
    with pytest.raises(ValueError, match="one layer"):
        reset_state_lstm(torch.nn.LSTM(3, 4, num_layers=2, batch_first=True), torch.randn(2, 3, 3),
                         torch.tensor([3, 1]))


# --- src/kernels/capsule_head.py: FastCapsuleHead for CapsuleHead (Eqs. 3-6) -----------------------

def head_outputs_gradients_and_traces(head, states, mask, aspect, seed=0):
    head.zero_grad()
    states, aspect = states.detach().requires_grad_(), aspect.detach().requires_grad_()
    head._trace = {}
    head.routing._trace = head._trace
    torch.manual_seed(seed)               # the routing's dropout draws the same mask either way
    lengths = head(states, mask, aspect)
    (lengths * torch.arange(1.0, 4.0, dtype=lengths.dtype)).sum().backward()
    return ([lengths.detach(), head._trace["u"], head._trace["routing"], states.grad, aspect.grad]
            + [p.grad for p in head.parameters()])


def compare_heads(dtype, dropout):
    torch.manual_seed(0)
    head = CapsuleHead(10, 5, 16, 3, 4.0, dropout).to(dtype).train()     # states narrower than capsules
    fast = swapped(head, "fast")
    assert type(fast) is FastCapsuleHead
    lengths = torch.tensor([7, 3, 1, 5])
    states = with_garbage_padding(torch.randn(4, 7, 10, dtype=dtype), lengths)
    aspect = torch.randn(4, 5, dtype=dtype)
    mask = lengths_mask(lengths, 7)
    expected = head_outputs_gradients_and_traces(head, states, mask, aspect)
    got = head_outputs_gradients_and_traces(fast, states, mask, aspect)
    names = ["capsule lengths", "u_i (Eq. 4)", "w_ij (Eq. 5)", "states' gradient", "aspect's gradient"] + \
        [n for n, _ in head.named_parameters()]
    compare(got, expected, names, "src/kernels/capsule_head.py FastCapsuleHead",
            "CapsuleHead/CapsuleGuidedRouting (Eqs. 4-6)", dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_the_capsule_head_substitute_matches_capsule_head_and_guided_routing_with_all_gradients(dtype, dropout):
    compare_heads(dtype, dropout)


def test_editing_the_readable_routing_alone_fails_the_comparison_naming_the_substitute(monkeypatch):
    """Eq. 6 changed in src/layers.py only (s u_i w_ij becomes u_i w_ij): the substitute no longer
    computes the readable function, and the failure says which file to update."""
    def without_scale(self, primary, norm_weights):
        routing = torch.softmax(primary @ (self.weight @ self.guide.t()), dim=-1)
        self.keep("routing", routing)
        return (routing * norm_weights.unsqueeze(-1)).transpose(1, 2) @ primary
    monkeypatch.setattr(CapsuleGuidedRouting, "forward", without_scale)
    with pytest.raises(AssertionError, match="src/kernels/capsule_head.py FastCapsuleHead no longer matches"):
        compare_heads(torch.float64, 0.0)


# --- whole models ---------------------------------------------------------------------------------

def word_vector_model(name, task):
    """model_setup's model (float64, train mode) and batch, capsules wider than the states, so
    that every substitute applies where the model has its module."""
    model, batch, _, _ = model_setup(name, task, None, **({"capsule_size": 64} if name.startswith("capsnet") else {}))
    return model.double().train(), batch


# (model, task) of the word-vector models with a module that has a substitute
SUBSTITUTED_MODEL_TASKS = [(name, task) for name, task in model_tasks() if not name.endswith("bert")
                           and substituted(use_kernels(word_vector_model(name, task)[0], "fast"))]


@pytest.mark.parametrize("name,task", SUBSTITUTED_MODEL_TASKS)
def test_every_model_with_a_substitute_gives_the_same_scores_and_gradients_under_fast_and_reference(name, task):
    model, batch = word_vector_model(name, task)
    fast = swapped(model, "fast")

    def run(m):
        m.zero_grad()
        scores = m(batch)
        (scores * torch.arange(1.0, 4.0, dtype=scores.dtype)).sum().backward()
        return [scores.detach()] + [p.grad for p in m.parameters() if p.requires_grad]

    names = ["scores"] + [n for n, p in model.named_parameters() if p.requires_grad]
    substitutes = ", ".join(sorted(set(substituted(fast).values())))
    compare(run(fast), run(model), names, f"src/kernels ({substitutes})", f"{name}'s readable modules", torch.float64)


def test_the_substituted_models_cover_every_substitute():
    used = {cls for name, task in SUBSTITUTED_MODEL_TASKS
            for cls in substituted(use_kernels(word_vector_model(name, task)[0], "fast")).values()}
    assert used == {cls.__name__ for cls in SUBSTITUTES.values()}
    names = {name for name, _ in SUBSTITUTED_MODEL_TASKS}
    assert {"capsnet", "capsnet-dr", "lstm", "td-lstm", "at-lstm", "ian"} <= names


def test_one_trained_checkpoint_gives_the_same_test_predictions_under_reference_and_fast(tmp_path):
    cfg = compose_cfg(overrides=["model.capsule_size=16"])      # both the BiGRU and the head substituted
    model, data = tiny_capsnet(cfg)
    use_kernels(model, "fast")                                   # trained as a default run trains
    train_rows, test_rows = list(range(32)), list(range(32, 48))
    train_set = ABSADataset({k: v[train_rows] for k, v in data.arrays.items()}, model.input_fields())
    test_set = ABSADataset({k: v[test_rows] for k, v in data.arrays.items()}, model.input_fields())
    tcfg = dataclasses.replace(cfg.train, lr=1e-2)
    optimizer, scheduler = make_optimizer(model, tcfg, 100)
    device = torch.device("cpu")
    model.train()
    for _ in range(10):
        for batch in make_loader(train_set, 8, shuffle=True, seed=0):
            train_step(model, batch, optimizer, scheduler, tcfg.grad_clip, device)
    save_checkpoint(tmp_path / "checkpoint.pt", model, cfg.to_dict(), {})
    state = load_checkpoint(tmp_path / "checkpoint.pt")["model_state"]

    scores = {}
    for choice in ("reference", "fast"):
        fresh = use_kernels(tiny_capsnet(cfg)[0], choice)
        fresh.load_state_dict(state)
        scores[choice] = predict_scores(fresh.eval(), make_eval_loader(test_set, 16), device)[0]
    assert substituted(fresh) == {"encoder": "FastBiGRU", "head": "FastCapsuleHead"}
    assert len(set(scores["reference"].argmax(-1).tolist())) > 1          # it learned more than one label
    assert torch.equal(scores["reference"].argmax(-1), scores["fast"].argmax(-1))
    torch.testing.assert_close(scores["fast"], scores["reference"], rtol=1e-5, atol=1e-6)
