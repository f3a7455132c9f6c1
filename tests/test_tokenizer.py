"""The tokenizer's standard-library engine (data_process/tokenizer.py) gives NLTK's own tokens."""
import random
import xml.etree.ElementTree as ET

import pytest
from nltk.tokenize import NLTKWordTokenizer

from data_process.tokenizer import _plain_words, rule_spans, stdlib_treebank, token_spans, tokenize

EDGE_CASES = [
    'He said "hi" (twice) -- ok?', "''quoted''", "don't can't won't", "«x» ‘y’ “z”", "a...b", "end.",
    "x: y, z", "[a] {b} <c>", "'tis 'twas", "‘Hello’ he said.", "$3.88 @home #tag 50% & co;",
    "e.g. U.S.A.", "", " ", "—dash–", "a*b", "The fish's  bones,\tthe chef's\nknife.",
]


def spans(tokenizer, texts):
    return [list(tokenizer.span_tokenize(t)) for t in texts]


def test_stdlib_engine_matches_nltk_on_edge_cases():
    assert spans(stdlib_treebank(), EDGE_CASES) == spans(NLTKWordTokenizer(), EDGE_CASES)


@pytest.mark.slow
def test_stdlib_engine_matches_nltk_on_every_dataset_sentence_and_term_split(shared_data):
    texts = [t.text for path in sorted(shared_data.glob("*/*.xml")) for t in ET.parse(path).iter("text") if t.text]
    assert len(texts) > 10000
    rng = random.Random(0)
    pieces = []
    for text in texts[::5]:   # the left / right pieces tokenize_with_term makes around a term
        cut = rng.randrange(len(text) + 1)
        pieces += [text[:cut], text[cut:]]
    sample = texts + pieces
    assert spans(stdlib_treebank(), sample) == spans(NLTKWordTokenizer(), sample)


@pytest.mark.slow
def test_plain_word_shortcut_gives_the_rules_spans_on_random_strings():
    rng = random.Random(0)
    atoms = ["a", "B", "7", " ", "  ", ",", ", ", ".", "...", "'", "cannot", "gonna", "Wanna", "gimme", "can",
             "not", "3,5", "1.5", "x.", ":", ": ", '"', "-", "--", "\u2013", "/", *"()[]{}<>;@#$%&?!*"]
    texts = ["".join(rng.choice(atoms) for _ in range(rng.randrange(10))) for _ in range(30000)]
    shortcut = [t for t in texts if _plain_words(t)]
    assert len(shortcut) > 5000                # the shortcut is exercised, on many shapes
    assert [token_spans(t) for t in texts] == [rule_spans(t) for t in texts]
    assert [tokenize(t) for t in texts] == [rule_tokens(t) for t in texts]
    assert [tokenize(t, lowercase=False) for t in texts] == [rule_tokens(t, lowercase=False) for t in texts]


def rule_tokens(text, lowercase=True):
    words = [text[s:e] for s, e in rule_spans(text)]
    return [w.lower() for w in words] if lowercase else words


@pytest.mark.slow
def test_plain_word_shortcut_gives_the_rules_spans_on_every_dataset_piece(shared_data):
    pieces = []
    for path in sorted(shared_data.glob("*/*.xml")):
        for sentence in ET.parse(path).iter("sentence"):
            text = sentence.findtext("text") or ""
            for term in sentence.iter("aspectTerm"):
                start, end = int(term.get("from")), int(term.get("to"))
                pieces += [text[:start], text[start:end], text[end:]]
            pieces.append(text)
    assert sum(map(bool, map(_plain_words, pieces))) > len(pieces) // 3
    assert [token_spans(t) for t in pieces] == [rule_spans(t) for t in pieces]
    assert [tokenize(t) for t in pieces] == [rule_tokens(t) for t in pieces]
