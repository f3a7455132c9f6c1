"""The one Encoder's word fields on hand-written sentences: TD-LSTM's left / right contexts, the term
mask and MemNet's distances, with the term at the start, in the middle, at the end, and multi-word."""
import pytest

from conftest import compose_cfg
from data_process.encode import Encoder, tokenise
from data_process.fields import length_field
from data_process.vocab import ASPECT, Vocab
from data_process.xml_reader import Instance


def encode_one(text, term):
    start = text.index(term)
    instance = Instance(0, text, term, start, start + len(term), 0)
    tokens = tokenise([instance], "atsa")[0].tokens
    vocab = Vocab(["<pad>", "<unk>", "<aspect>"] + sorted(set(tokens)))
    arrays = Encoder(vocab, "atsa", None, True).encode([instance])
    words = {i: w for i, w in enumerate(vocab.words)}

    def row(field):
        length = int(arrays[length_field(field)][0])
        return arrays[field][0, :length].tolist()
    return tokens, words, row


@pytest.mark.parametrize("text,term,left,right,distance", [
    ("Pasta was great .", "Pasta", ["pasta"], [".", "great", "was", "pasta"], [0, 1, 2, 3]),
    ("The pasta was great .", "pasta", ["the", "pasta"], [".", "great", "was", "pasta"], [1, 0, 1, 2, 3]),
    ("I loved the pasta", "pasta", ["i", "loved", "the", "pasta"], ["pasta"], [3, 2, 1, 0]),
    ("The wine list was long .", "wine list", ["the", "wine", "list"], [".", "long", "was", "list", "wine"],
     [1, 0, 0, 1, 2, 3]),
])
def test_left_right_mask_and_distance_follow_the_term(text, term, left, right, distance):
    tokens, words, row = encode_one(text, term)
    assert [words[i] for i in row("left")] == left          # w_1 .. the term's last word, in order
    assert [words[i] for i in row("right")] == right        # w_n .. the term's first word, reversed
    assert row("sentence_distance") == distance
    mask = row("sentence_aspect_mask")
    assert [t for t, m in zip(tokens, mask) if m] == term.lower().split()
    context = [words[i] for i in row("context")]
    assert context.count(words[ASPECT]) == 1 and not set(term.lower().split()) & set(context)


def test_a_field_declared_in_fields_py_is_encoded_with_its_lengths_and_token_strings(monkeypatch):
    """A new word field is one WordField entry: the encoder, length_field, field_tokens and the
    processed-data fingerprint follow from it."""
    from data_process import fields, preprocess
    from data_process.fields import WordField
    text, term = "The wine list was long .", "wine list"
    instance = Instance(0, text, term, text.index(term), text.index(term) + len(term), 0)
    data = compose_cfg("mams-atsa").data
    before = preprocess.fingerprint(data, {})
    monkeypatch.setitem(fields.WORD_FIELDS, "after", WordField("atsa", "sequence", "the words after the term",
                                                                lambda s, a, b, m: list(s[b:])))
    monkeypatch.setitem(fields.WORD_FIELDS, "sentence_position", WordField(
        "atsa", "aligned", "1-based position", lambda n, a, b: list(range(1, n + 1)), "int16"))
    tokens, words, row = encode_one(text, term)
    assert [words[i] for i in row("after")] == ["was", "long", "."]
    assert row("sentence_position") == [1, 2, 3, 4, 5, 6] and length_field("sentence_position") == "sentence_len"
    vocab = Vocab(["<pad>", "<unk>", "<aspect>"] + sorted(set(tokens)))
    assert Encoder(vocab, "atsa", None, True).field_tokens(instance, "after") == ["was", "long", "."]
    assert "after" not in Encoder(vocab, "acsa", ("food",), True).words(
        [Instance(0, text, "food", -1, -1, 0)])            # an ATSA field: not in ACSA data
    assert preprocess.fingerprint(data, {}) != before      # processed data made before it is rebuilt
