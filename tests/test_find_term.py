"""train.inference.requests: where a request's aspect term is in its text (find_term's str.find search on
ASCII text gives what the regular expressions give: first whole-word match, else first substring,
case-insensitive), and what a bad request file or aspect is told."""
import random
import re
import xml.etree.ElementTree as ET

import pytest

from train.inference.requests import find_term


def regex_reference(text, term):
    match = re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) \
        or re.search(re.escape(term), text, re.IGNORECASE)
    return match and match.span()


def test_whole_word_match_comes_before_an_earlier_substring_match():
    assert find_term("The pizzas and the pizza", "Pizza") == (19, 24)
    assert find_term("pizzas only", "pizza") == (0, 5)         # no whole word: first substring
    assert find_term("no such thing", "pizza") is None
    assert find_term("a_pizza pizza_b pizza", "pizza") == (16, 21)   # '_' is a word character


def test_matches_the_regular_expressions_on_random_ascii_and_non_ascii_text():
    rng = random.Random(0)
    atoms = ["a", "A", "b", "ab", "_", " ", ".", "-", "1", "é", "ß", "İ", "(", "+"]
    for _ in range(20000):
        text = "".join(rng.choice(atoms) for _ in range(rng.randrange(12)))
        term = "".join(rng.choice(atoms) for _ in range(1 + rng.randrange(3)))
        assert find_term(text, term) == regex_reference(text, term), (text, term)


def test_matches_the_regular_expressions_on_every_dataset_term(shared_data):
    pairs = [(s.findtext("text") or "", t.get("term")) for path in sorted(shared_data.glob("*/*.xml"))
             for s in ET.parse(path).iter("sentence") for t in s.iter("aspectTerm")]
    assert len(pairs) > 10000
    assert [find_term(text, term) for text, term in pairs] == [regex_reference(text, term) for text, term in pairs]


# ---------------------------------------------------------------- request files and messages

def test_an_input_that_is_a_folder_or_holds_no_request_says_so(tmp_path):
    from common.errors import UserError
    from train.inference.requests import read_requests
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path))}: is a folder; --input takes a JSON-lines"):
        read_requests(input_file=tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(UserError, match=rf"^{re.escape(str(empty))}: no requests in the file"):
        read_requests(input_file=empty)
    with pytest.raises(UserError, match=r"^/dev/null: no requests in the file"):   # a device is read, not "missing"
        read_requests(input_file="/dev/null")


def test_deep_nesting_an_undecodable_byte_and_an_invisible_text_are_each_one_error(tmp_path):
    from common.errors import UserError
    from train.inference.requests import read_requests
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(UserError, match=rf"^{re.escape(str(deep))}:1: not valid JSON \(nested too deeply\)"):
        read_requests(input_file=deep)
    text = b"caf\xe9 food".decode("utf-8", "surrogateescape")          # how Python hands over such an argv
    with pytest.raises(UserError, match=r"^--text: the text is not valid UTF-8 \(the byte 0xe9 at character 3\)"):
        read_requests(text, ["food"])
    with pytest.raises(UserError, match=r"^--text: empty text \(no visible character\)"):
        read_requests("\u200b\u200b \u2060", ["food"])                 # zero-width characters only
    with pytest.raises(UserError, match=r"^item 0: the text is not valid Unicode \(a lone surrogate"):
        from train.inference.requests import requests_from_items
        requests_from_items([("caf\udce9 food", ["food"])])           # from JSON: a lone surrogate, not a byte


def test_an_error_echoes_a_long_aspect_cut_short():
    from common.errors import UserError
    from train.inference.requests import locate_term
    with pytest.raises(UserError) as error:
        locate_term("The food was good.", "wine" * 1500, "item 0")
    assert len(str(error.value)) < 200 and "(6000 characters)" in str(error.value)


def test_a_heat_map_file_name_keeps_accented_letters_as_ascii():
    from train.inference.explain import slug
    assert slug("The café was nice") == "the-cafe-was-nice" and slug("🍕🍕") == "x"
