"""SemEval-2014 XML reader (data_process/xml_reader.py) and the tokenizer (data_process/tokenizer.py)."""
import pytest

from common.errors import UserError
from common.labels import LABELS
from conftest import sentence_xml, term
from data_process.tokenizer import tokenize, tokenize_with_term
from data_process.xml_reader import read_semeval_xml

S1 = "The decor is not special at all but their food is amazing."
S2 = "Our waiter was rude, although the pasta was fine."
S3 = "Nothing to say here."


def atsa_sentences():
    return [
        sentence_xml(S1, terms=[term(S1, "decor", "negative"), term(S1, "food", "positive")]),
        sentence_xml(S2, terms=[term(S2, "waiter", "negative"), term(S2, "pasta", "conflict"),
                                term(S2, "pasta", "neutral")]),
        sentence_xml(S3),
    ]


def test_reader_reads_atsa_terms_offsets_and_labels(xml_writer):
    path = xml_writer("train.xml", atsa_sentences())
    instances, stats = read_semeval_xml(path, "atsa")
    assert [(i.sentence_id, i.aspect, LABELS[i.label]) for i in instances] == [
        (0, "decor", "negative"), (0, "food", "positive"), (1, "waiter", "negative"), (1, "pasta", "neutral")]
    for i in instances:
        assert i.text[i.start:i.end] == i.aspect
    assert instances[0].text == S1


def test_reader_drops_and_counts_conflict_polarity(xml_writer):
    path = xml_writer("train.xml", atsa_sentences())
    instances, stats = read_semeval_xml(path, "atsa")
    assert stats.dropped_conflict == 1
    assert stats.sentences == 3
    assert stats.sentences_without_aspects == 1
    assert all(i.aspect != "pasta" or LABELS[i.label] == "neutral" for i in instances)


def test_reader_reads_acsa_categories_and_drops_conflict(xml_writer):
    path = xml_writer("train.xml", [
        sentence_xml(S1, categories=[("ambience", "negative"), ("food", "positive")]),
        sentence_xml(S2, categories=[("staff", "negative"), ("food", "conflict")]),
    ])
    instances, stats = read_semeval_xml(path, "acsa", categories=["food", "staff", "ambience"])
    assert [(i.sentence_id, i.aspect, LABELS[i.label], i.start, i.end) for i in instances] == [
        (0, "ambience", "negative", -1, -1), (0, "food", "positive", -1, -1), (1, "staff", "negative", -1, -1)]
    assert stats.dropped_conflict == 1


def test_reader_for_acsa_ignores_aspect_terms_and_vice_versa(xml_writer):
    path = xml_writer("both.xml", [sentence_xml(S1, terms=[term(S1, "food", "positive")],
                                                categories=[("food", "negative")])])
    (atsa,), _ = read_semeval_xml(path, "atsa")
    (acsa,), _ = read_semeval_xml(path, "acsa")
    assert (atsa.aspect, LABELS[atsa.label]) == ("food", "positive")
    assert (acsa.aspect, LABELS[acsa.label]) == ("food", "negative")


def test_reader_reads_escaped_text_with_offsets_on_the_unescaped_text(xml_writer):
    text = 'Fish & chips were "great" <really>.'
    path = xml_writer("train.xml", [sentence_xml(text, terms=[term(text, "Fish & chips", "positive")])])
    (instance,), _ = read_semeval_xml(path, "atsa")
    assert instance.text == text
    assert (instance.start, instance.end) == (0, 12)


def _assert_user_error_names(path, task="atsa", categories=None, match=None):
    with pytest.raises(UserError) as info:
        read_semeval_xml(path, task, categories)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    if match:
        assert match in message
    return message


def test_malformed_xml_raises_user_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<sentences><sentence><text>Hi</text></sentence>", encoding="utf-8")  # truncated
    _assert_user_error_names(path, match="malformed XML")


def test_truncated_real_style_file_raises_user_error_naming_the_file(xml_writer):
    path = xml_writer("train.xml", atsa_sentences())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_user_error_names(path, match="malformed XML")


def test_missing_file_raises_user_error_naming_the_file(tmp_path):
    _assert_user_error_names(tmp_path / "nope.xml", match="not found")


def test_unknown_polarity_raises_user_error_naming_file_and_sentence(xml_writer):
    path = xml_writer("train.xml", [sentence_xml(S1, terms=[term(S1, "food", "positive")]),
                                    sentence_xml(S2, terms=[term(S2, "waiter", "angry")])])
    message = _assert_user_error_names(path, match="unknown polarity 'angry'")
    assert "sentence 2" in message


def test_offsets_that_do_not_give_the_term_raise_user_error_naming_the_file(xml_writer):
    start = S1.index("food")
    path = xml_writer("train.xml", [sentence_xml(S1, terms=[("food", start + 1, start + 5, "positive")])])
    _assert_user_error_names(path, match="not the term 'food'")


def test_offsets_beyond_the_text_raise_user_error(xml_writer):
    path = xml_writer("train.xml", [sentence_xml(S3, terms=[("here", 100, 104, "positive")])])
    _assert_user_error_names(path, match="offsets 100-104")


def test_non_integer_offsets_raise_user_error(xml_writer):
    path = xml_writer("train.xml", [sentence_xml(S3, terms=[("here", "a", "b", "positive")])])
    _assert_user_error_names(path, match="non-integer")


def test_unknown_category_raises_user_error_naming_the_file(xml_writer):
    path = xml_writer("train.xml", [sentence_xml(S1, categories=[("decor", "negative")])])
    _assert_user_error_names(path, task="acsa", categories=["food", "service"], match="unknown category 'decor'")


def test_wrong_root_element_raises_user_error_naming_the_file(xml_writer):
    path = xml_writer("train.xml", atsa_sentences(), root="Reviews")
    _assert_user_error_names(path, match="root element is <Reviews>")


def test_file_without_usable_aspects_raises_user_error_naming_the_file(xml_writer):
    path = xml_writer("train.xml", [sentence_xml(S1, terms=[term(S1, "food", "positive")])])
    _assert_user_error_names(path, task="acsa", match="no <aspectCategory>")


def test_empty_text_raises_user_error_naming_the_file(xml_writer):
    path = xml_writer("train.xml", [sentence_xml("   ")])
    _assert_user_error_names(path, match="missing or empty <text>")


def test_unknown_task_raises_user_error(xml_writer):
    path = xml_writer("train.xml", atsa_sentences())
    with pytest.raises(UserError, match="unknown task 'absa'"):
        read_semeval_xml(path, "absa")


# --- tokenizer -------------------------------------------------------------------------------

def test_tokenize_lowercases_and_splits_final_period():
    assert tokenize("The Food was GREAT.") == ["the", "food", "was", "great", "."]
    assert tokenize("The Food", lowercase=False) == ["The", "Food"]


def test_tokenize_with_term_puts_a_term_glued_to_its_neighbours_on_its_own_tokens():
    text = "We sat in the non-smoking section."
    start = text.index("smoking")
    assert "smoking" not in tokenize(text)  # plain tokenisation keeps "non-smoking" whole
    tokens, (first, last) = tokenize_with_term(text, start, start + len("smoking"))
    assert tokens[first:last] == ["smoking"]
    assert tokens[:first] == tokenize(text[:start])
    assert tokens[last:] == tokenize(text[start + len("smoking"):])


def test_tokenize_with_multi_word_term_marks_all_its_tokens():
    text = "The Chicken Tikka Masala was great."
    start = text.index("Chicken")
    end = start + len("Chicken Tikka Masala")
    tokens, (first, last) = tokenize_with_term(text, start, end)
    assert tokens[first:last] == ["chicken", "tikka", "masala"]
    assert tokens == ["the", "chicken", "tikka", "masala", "was", "great", "."]


def test_tokenize_with_term_at_the_end_before_the_period():
    text = "I loved the sushi."
    start = text.index("sushi")
    tokens, (first, last) = tokenize_with_term(text, start, start + 5, lowercase=False)
    assert tokens[first:last] == ["sushi"]
    assert tokens[-1] == "."
