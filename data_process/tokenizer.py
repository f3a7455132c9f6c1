"""Word tokenisation with NLTK's Treebank-style tokenizer (needs no downloaded NLTK data).

Tokens are substrings of the text (quotes stay as written), so term offsets map onto tokens.

NLTK (3.10) runs each of its ~30 Treebank rules through `nltk.redos`, the third-party `regex`
engine under a wall-clock timeout: a guard meant for patterns a caller supplies. The rules here are
NLTK's own fixed patterns, so `_tokenizer` runs the same rules with the standard library's `re`,
twice as fast (prediction on new text spends most of its time here). The tokens are
identical: tests/test_tokenizer.py compares both engines on every sentence of the four datasets
(when the raw files are present) and on hand-written edge cases.

Most pieces `tokenize_with_term` cuts (nine in ten on MAMS) are plain: ASCII letters, digits,
spaces, '/', single '-', punctuation that NLTK always splits off ( ( ) [ ] { } < > ; @ # $ % & ? ! * ),
',' or ':' followed by a space, at most a final '.'; no quotes or apostrophes. On such a piece the
~33 rules do nothing but split off those marks (unless a word is one of NLTK's contractions, "gonna",
"cannot", ...), so `token_spans` reads its tokens in one pass. tests/test_tokenizer.py checks that
this gives the rules' spans on every dataset piece and on random strings of the characters involved.
"""
import re
from functools import lru_cache

_TRAILING_PERIOD = re.compile(r"^(.*[^.])\.$")  # "it." -> "it" + "."  (NLTK splits only the final one)
_RULE_LISTS = ("STARTING_QUOTES", "ENDING_QUOTES", "PUNCTUATION", "CONVERT_PARENTHESES")
_RULES = ("PARENS_BRACKETS", "DOUBLE_DASHES")


def _plain(pattern):
    """An `nltk.redos` pattern compiled by the standard library (the pattern text is unchanged)."""
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern.pattern)


def stdlib_treebank():
    """NLTKWordTokenizer with its rules compiled by `re` instead of `nltk.redos`. (nltk is imported
    here, on first use: importing it takes 1.5 s, which a training run on current arrays never needs.)"""
    from nltk.tokenize import NLTKWordTokenizer
    tokenizer = NLTKWordTokenizer()
    for name in _RULE_LISTS:
        setattr(tokenizer, name, [(_plain(p), repl) for p, repl in getattr(NLTKWordTokenizer, name)])
    for name in _RULES:
        pattern, repl = getattr(NLTKWordTokenizer, name)
        setattr(tokenizer, name, (_plain(pattern), repl))
    return tokenizer


@lru_cache(maxsize=1)
def _tokenizer():
    return stdlib_treebank()


_ALWAYS_SPLIT = r"()\[\]{}<>;@#$%&?!*"     # NLTK makes each of these a token of its own
_PLAIN_WORDS = re.compile(rf"(?:[A-Za-z0-9 /{_ALWAYS_SPLIT}-]|[,:](?= ))*\.?\Z")
_PLAIN_TOKEN = re.compile(rf"[A-Za-z0-9/-]+|[,:.{_ALWAYS_SPLIT}]")


@lru_cache(maxsize=1)
def _contraction_words():
    """The words NLTK's contraction rules split without an apostrophe ("cannot", "gonna", ...), read
    from its patterns; a plain piece holding one of them goes through the rules."""
    from nltk.tokenize import NLTKWordTokenizer
    rules = NLTKWordTokenizer.CONTRACTIONS2 + NLTKWordTokenizer.CONTRACTIONS3
    words = (re.search(r"\((\w+)\)\(\?#X\)\((\w+)\)", rule.pattern) for rule in rules)
    return tuple(w.group(1) + w.group(2) for w in words if w)


def _plain_words(text):
    if not _PLAIN_WORDS.match(text) or "--" in text:
        return False
    lowered = text.lower()
    return not any(word in lowered for word in _contraction_words())


def token_spans(text):
    """[(start, end)] character spans of the tokens of `text`."""
    if _plain_words(text):   # see the module docstring
        return [match.span() for match in _PLAIN_TOKEN.finditer(text)]
    return rule_spans(text)


def rule_spans(text):
    """token_spans through every rule (NLTK's, then a final "word." split), with no shortcut."""
    spans = []
    for start, end in _tokenizer().span_tokenize(text):
        piece = text[start:end]
        match = piece.endswith(".") and _TRAILING_PERIOD.match(piece)
        if match and len(piece) > 2 and "." not in match.group(1):
            spans += [(start, end - 1), (end - 1, end)]
        else:
            spans.append((start, end))
    return spans


def tokenize(text, lowercase=True):
    if _plain_words(text):              # ASCII: lower-casing keeps every token where it was
        return _PLAIN_TOKEN.findall(text.lower() if lowercase else text)
    words = [text[s:e] for s, e in rule_spans(text)]
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
