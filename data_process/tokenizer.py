"""Word tokenisation with NLTK's Treebank-style tokenizer (needs no downloaded NLTK data).

Tokens are substrings of the text (quotes stay as written), so term offsets map onto tokens.
"""
import re
from functools import lru_cache

from nltk.tokenize import NLTKWordTokenizer

_TRAILING_PERIOD = re.compile(r"^(.*[^.])\.$")  # "it." -> "it" + "."  (NLTK splits only the final one)


@lru_cache(maxsize=1)
def _tokenizer():
    return NLTKWordTokenizer()


def token_spans(text):
    """[(start, end)] character spans of the tokens of `text`."""
    spans = []
    for start, end in _tokenizer().span_tokenize(text):
        piece = text[start:end]
        match = _TRAILING_PERIOD.match(piece)
        if match and len(piece) > 2 and "." not in match.group(1):
            spans += [(start, end - 1), (end - 1, end)]
        else:
            spans.append((start, end))
    return spans


def tokenize(text, lowercase=True):
    words = [text[s:e] for s, e in token_spans(text)]
    return [w.lower() for w in words] if lowercase else words


def tokenize_with_term(text, start, end, lowercase=True):
    """Tokenise `text` so that the term text[start:end] is its own run of tokens.

    The left context, the term and the right context are tokenised separately, so a term never
    shares a token with its neighbours. Returns (tokens, (first, last)) with tokens[first:last] the term.
    """
    left = tokenize(text[:start], lowercase)
    term = tokenize(text[start:end], lowercase)
    right = tokenize(text[end:], lowercase)
    return left + term + right, (len(left), len(left) + len(term))
