"""The tokenizer's standard-library engine (data_process/tokenizer.py) gives NLTK's own tokens."""
import random
import xml.etree.ElementTree as ET

from nltk.tokenize import NLTKWordTokenizer

from data_process.tokenizer import stdlib_treebank

EDGE_CASES = [
    'He said "hi" (twice) -- ok?', "''quoted''", "don't can't won't", "«x» ‘y’ “z”", "a...b", "end.",
    "x: y, z", "[a] {b} <c>", "'tis 'twas", "‘Hello’ he said.", "$3.88 @home #tag 50% & co;",
    "e.g. U.S.A.", "", " ", "—dash–", "a*b", "The fish's  bones,\tthe chef's\nknife.",
]


def spans(tokenizer, texts):
    return [list(tokenizer.span_tokenize(t)) for t in texts]


def test_stdlib_engine_matches_nltk_on_edge_cases():
    assert spans(stdlib_treebank(), EDGE_CASES) == spans(NLTKWordTokenizer(), EDGE_CASES)


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
