"""src/kernels: each fast kernel computes what its readable module computes with the switch at
`reference` -- outputs and every parameter and input gradient, over padded batches of different
lengths (float64 tight, float32 close) -- and the switch (train.kernels) is applied where it is
chosen. A failure names the kernel file to update."""
import pytest
import torch

from common.errors import UserError
from conftest import compose_cfg, tiny_capsnet
from src import kernels
from src.blocks import RNNEncoder
from src.kernels.gru import held_state_gru, stepwise_gru
from src.layers import CapsuleHead
from train.cuda_graphs import can_use
from train.inference.api import SentimentClassifier

TOLERANCE = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def compare(got, expected, names, kernel, reference, dtype):
    assert len(got) == len(expected) == len(names)
    for name, a, b in zip(names, got, expected):
        torch.testing.assert_close(
            a, b, **TOLERANCE[dtype],
            msg=lambda m, name=name: f"{kernel} no longer matches {reference} ({name}, {dtype}): update it\n{m}")


def lengths_mask(lengths, steps):
    return torch.arange(steps)[None, :] < lengths[:, None]


def with_garbage_padding(x, lengths, value=3.0):
    """x with a non-zero value past each row's length (what sits there must change nothing)."""
    x = x.clone()
    x[~lengths_mask(lengths, x.size(1))] = value
    return x


# --- the switch ---------------------------------------------------------------------------------

def test_the_switch_is_fast_by_default_and_using_restores_it():
    assert kernels.current() == "fast" and kernels.enabled("gru")
    with kernels.using("reference"):
        assert not any(kernels.enabled(k) for k in kernels.KERNELS)
    assert kernels.current() == "fast"


def test_an_unknown_switch_value_or_kernel_name_is_refused():
    with pytest.raises(ValueError, match="'quick' is not one of fast, reference"):
        kernels.use("quick")
    with pytest.raises(ValueError, match="no kernel named 'rnn'"):
        kernels.enabled("rnn")


def test_the_config_key_takes_fast_or_reference_only():
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


def test_a_classifier_applies_the_switch_its_run_was_trained_with():
    cfg = compose_cfg(overrides=["train.kernels=reference"])
    with kernels.using("fast"):
        SentimentClassifier(tiny_capsnet(cfg)[0], None, cfg, torch.device("cpu"))
        assert kernels.current() == "reference"


# --- src/kernels/gru.py: CapsNet's BiGRU (Eq. 2) ---------------------------------------------------

GRU_KERNELS = {"src/kernels/gru.py stepwise_gru (CPU)": stepwise_gru,
               "src/kernels/gru.py held_state_gru (CUDA, on the CPU's kernel)": held_state_gru,
               "src/kernels/gru.py bidirectional_gru": kernels.bidirectional_gru}


def capsnet(num_layers, dtype):
    cfg = compose_cfg(overrides=["model.capsule_size=8", "model.dropout=0.0", f"model.num_layers={num_layers}"])
    return tiny_capsnet(cfg)[0].to(dtype).train()


def bigru_outputs_and_gradients(model, run, words, lengths, aspect, weights):
    model.zero_grad()
    words, aspect = words.detach().requires_grad_(), aspect.detach().requires_grad_()
    out = run(words, aspect)
    (out * weights).sum().backward()
    return [out.detach(), words.grad, aspect.grad] + [p.grad for p in model.encoder.parameters()]


@pytest.mark.parametrize("kernel", GRU_KERNELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("steps, lengths, num_layers", [
    (6, [6, 3, 1, 4], 2),        # CapsNet's shape: 2 layers
    (6, [2, 6, 6, 5], 1),
    (5, [5, 0, 2, 5], 3),        # an empty row reads one (padding) step, as the packed GRU does
    (1, [1, 1, 1, 0], 2),        # one step: W_hh gets no gradient from h_0 = 0
])
def test_the_bigru_kernels_match_capsnets_packed_nn_gru_with_all_gradients(kernel, dtype, steps, lengths, num_layers):
    model = capsnet(num_layers, dtype)
    width = model.encoder.hidden_size
    torch.manual_seed(0)
    lengths = torch.tensor(lengths)
    words = with_garbage_padding(torch.randn(len(lengths), steps, width, dtype=dtype), lengths)
    aspect = torch.randn(len(lengths), width, dtype=dtype)
    weights = torch.randn(len(lengths), steps, 2 * width, dtype=dtype)

    def reference(w, a):
        with kernels.using("reference"):
            return model.bigru(w, lengths, a)

    fast = GRU_KERNELS[kernel]
    expected = bigru_outputs_and_gradients(model, reference, words, lengths, aspect, weights)
    got = bigru_outputs_and_gradients(model, lambda w, a: fast(model.encoder, w, lengths.clamp(min=1), a),
                                      words, lengths, aspect, weights)
    names = ["states", "words' gradient", "aspect's gradient"] + [n for n, _ in model.encoder.named_parameters()]
    compare(got, expected, names, kernel, "CapsNet.bigru's packed nn.GRU (Eq. 2)", dtype)


def test_the_bigru_kernel_refuses_a_gru_with_dropout_between_layers():
    gru = torch.nn.GRU(4, 3, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2)
    with pytest.raises(ValueError, match="dropout between its layers"):
        kernels.bidirectional_gru(gru, torch.randn(2, 3, 4), torch.tensor([3, 2]))


# --- src/kernels/lstm.py: the baselines' (Bi)LSTM ---------------------------------------------------

def lstm_outputs_and_gradients(encoder, inputs, lengths, weights, choice):
    encoder.zero_grad()
    inputs = inputs.detach().requires_grad_()
    with kernels.using(choice):
        states, last = encoder(inputs, lengths)
    ((states * weights).sum() + (last * last).sum()).backward()
    return [states.detach(), last.detach(), inputs.grad] + [p.grad for p in encoder.parameters()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("steps, lengths", [(6, [6, 3, 1, 4]), (5, [5, 0, 2, 5]), (1, [1, 1, 0])])
def test_the_reset_state_lstm_matches_rnn_encoders_packed_nn_lstm_with_all_gradients(steps, lengths, bidirectional,
                                                                                    dtype):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 4, bidirectional=bidirectional).to(dtype).train()
    lengths = torch.tensor(lengths)
    inputs = with_garbage_padding(torch.randn(len(lengths), steps, 5, dtype=dtype), lengths)
    weights = torch.randn(len(lengths), steps, encoder.output_size, dtype=dtype)
    expected = lstm_outputs_and_gradients(encoder, inputs, lengths, weights, "reference")
    got = lstm_outputs_and_gradients(encoder, inputs, lengths, weights, "fast")
    names = ["states", "last states", "inputs' gradient"] + [n for n, _ in encoder.named_parameters()]
    compare(got, expected, names, "src/kernels/lstm.py reset_state_lstm", "RNNEncoder's packed nn.LSTM", dtype)
    assert not got[0][~lengths_mask(lengths.clamp(min=1), steps)].any()     # zero on padding


def test_the_reset_state_lstm_takes_one_layer_only():
    with pytest.raises(ValueError, match="one layer"):
        kernels.reset_state_lstm(torch.nn.LSTM(3, 4, num_layers=2, batch_first=True), torch.randn(2, 3, 3),
                                 torch.tensor([3, 1]))


# --- src/kernels/capsule_head.py: CapsuleHead with capsule-guided routing (Eqs. 3-6) ---------------

def head_outputs_gradients_and_traces(head, states, mask, aspect, choice, seed=0):
    head.zero_grad()
    states, aspect = states.detach().requires_grad_(), aspect.detach().requires_grad_()
    head._trace = {}
    head.routing._trace = head._trace
    torch.manual_seed(seed)               # the routing's dropout draws the same mask either way
    with kernels.using(choice):
        lengths = head(states, mask, aspect)
    (lengths * torch.arange(1.0, 4.0, dtype=lengths.dtype)).sum().backward()
    return ([lengths.detach(), head._trace["u"], head._trace["routing"], states.grad, aspect.grad]
            + [p.grad for p in head.parameters()])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_the_state_space_head_matches_capsule_head_and_guided_routing_with_all_gradients(dtype, dropout):
    torch.manual_seed(0)
    head = CapsuleHead(10, 5, 16, 3, 4.0, dropout).to(dtype).train()     # states narrower than capsules
    assert kernels.capsule_head_applies(head)
    lengths = torch.tensor([7, 3, 1, 5])
    states = with_garbage_padding(torch.randn(4, 7, 10, dtype=dtype), lengths)
    aspect = torch.randn(4, 5, dtype=dtype)
    mask = lengths_mask(lengths, 7)
    expected = head_outputs_gradients_and_traces(head, states, mask, aspect, "reference")
    got = head_outputs_gradients_and_traces(head, states, mask, aspect, "fast")
    names = ["capsule lengths", "u_i (Eq. 4)", "w_ij (Eq. 5)", "states' gradient", "aspect's gradient"] + \
        [n for n, _ in head.named_parameters()]
    compare(got, expected, names, "src/kernels/capsule_head.py",
            "CapsuleHead/CapsuleGuidedRouting (Eqs. 4-6)", dtype)


@pytest.mark.parametrize("head", [
    CapsuleHead(600, 300, 300, 3, 4.0, 0.0),                          # states wider than the capsules
    CapsuleHead(10, 5, 16, 3, 4.0, 0.0, routing="dynamic"),
    CapsuleHead(10, 5, 16, 3, 4.0, 0.0, capsule_dropout=0.1),
], ids=["wider states", "dynamic routing", "capsule dropout"])
def test_the_state_space_head_does_not_apply_where_it_would_compute_another_function_or_more(head):
    assert not kernels.capsule_head_applies(head)


# --- the whole model ---------------------------------------------------------------------------

def test_capsnet_with_the_fast_kernels_matches_the_reference_layers_in_float64():
    cfg = compose_cfg(overrides=["model.capsule_size=8", "model.dropout=0.0"])
    model, data = tiny_capsnet(cfg)
    model = model.double().train()
    batch = data.collate(list(range(8)))                 # sentences of 3-9 words, padded
    assert len(set(batch["context_len"].tolist())) > 1

    def run(choice):
        model.zero_grad()
        with kernels.using(choice):
            scores = model(batch)
        (scores * torch.arange(1.0, 4.0, dtype=scores.dtype)).sum().backward()
        return [scores.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]

    expected, got = run("reference"), run("fast")
    names = ["capsule lengths"] + [n for n, p in model.named_parameters() if p.grad is not None]
    compare(got, expected, names, "src/kernels", "CapsNet's readable layers", torch.float64)
