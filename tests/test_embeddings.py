"""Word vectors (data_process/embeddings.py) and the sentiment matrix (data_process/lexicon.py)."""
import numpy as np
import pytest

from common.errors import UserError
from common.labels import LABELS
from data_process.embeddings import PACKAGED, embedding_matrix, lookup_vectors, source_identity
from data_process.lexicon import CLASS_ORDER, sentiment_matrix
from data_process.vocab import PAD, SPECIALS, Vocab


def write_glove(tmp_path, lines, name="vectors.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_glove_text_loader_returns_only_the_words_asked_for(tmp_path):
    path = write_glove(tmp_path, ["good 0.1 0.2 0.3", "bad -0.1 -0.2 -0.3", "food 1 2 3"])
    found, dim = lookup_vectors(str(path), {"good", "food", "missing"})
    assert dim == 3
    assert set(found) == {"good", "food"}
    np.testing.assert_allclose(found["good"], [0.1, 0.2, 0.3], rtol=1e-6)
    assert found["food"].dtype == np.float32


def test_glove_text_loader_falls_back_to_cased_entry_for_lowercase_word(tmp_path):
    path = write_glove(tmp_path, ["Paris 1 1 1", "Apple 2 2 2", "apple 3 3 3"])
    found, _ = lookup_vectors(str(path), {"paris", "apple"})
    np.testing.assert_allclose(found["paris"], [1, 1, 1])   # only a cased entry exists
    np.testing.assert_allclose(found["apple"], [3, 3, 3])   # the exact form wins over an earlier cased one


def test_glove_text_loader_keeps_first_exact_entry(tmp_path):
    path = write_glove(tmp_path, ["food 1 1", "food 2 2"])
    found, _ = lookup_vectors(str(path), {"food"})
    np.testing.assert_allclose(found["food"], [1, 1])


def test_glove_text_loader_skips_word2vec_header_line(tmp_path):
    path = write_glove(tmp_path, ["2 4", "good 1 2 3 4", "bad 5 6 7 8"])
    found, dim = lookup_vectors(str(path), {"good", "bad", "2"})
    assert dim == 4
    assert set(found) == {"good", "bad"}


def test_glove_text_loader_reads_words_that_contain_spaces(tmp_path):
    path = write_glove(tmp_path, ["good 1 2", "new york 3 4"])
    found, _ = lookup_vectors(str(path), {"new york"})
    np.testing.assert_allclose(found["new york"], [3, 4])


def test_glove_line_with_fewer_values_raises_user_error_naming_file_and_line(tmp_path):
    path = write_glove(tmp_path, ["good 1 2 3", "bad 4 5 6", "food 7 8"])
    with pytest.raises(UserError) as info:
        lookup_vectors(str(path), {"good"})
    assert f"{path}:3:" in str(info.value)
    assert "2 values, expected 3" in str(info.value)


def test_glove_non_numeric_value_raises_user_error_naming_file_and_line(tmp_path):
    path = write_glove(tmp_path, ["good 1 2 3", "bad 4 x 6"])
    with pytest.raises(UserError, match=rf"{path}:2: non-numeric"):
        lookup_vectors(str(path), {"bad"})


def test_glove_expected_dim_mismatch_raises_user_error(tmp_path):
    path = write_glove(tmp_path, ["good 1 2 3"])
    with pytest.raises(UserError, match="dimension 3, but data.embedding_dim is 300"):
        lookup_vectors(str(path), {"good"}, expected_dim=300)
    found, dim = lookup_vectors(str(path), {"good"}, expected_dim=3)
    assert dim == 3 and "good" in found


def test_glove_missing_or_empty_file_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="embeddings file not found"):
        lookup_vectors(str(tmp_path / "none.txt"), {"good"})
    with pytest.raises(UserError, match="embeddings file not found"):
        source_identity(str(tmp_path / "none.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="empty embeddings file"):
        lookup_vectors(str(empty), {"good"})


def test_source_identity_of_a_text_file_changes_when_the_file_changes(tmp_path):
    path = write_glove(tmp_path, ["good 1 2"])
    before = source_identity(str(path))
    path.write_text("good 1 2\nbad 3 4\n", encoding="utf-8")
    assert source_identity(str(path)) != before


def _vocab(words):
    return Vocab(list(SPECIALS) + list(words))


def test_embedding_matrix_zero_pad_row_known_rows_copied_oov_rows_uniform():
    vocab = _vocab(["good", "food", "zzzz", "qqqq"])
    vectors = {"good": np.full(5, 0.5, np.float32), "food": np.full(5, -0.5, np.float32)}
    matrix, coverage = embedding_matrix(vocab, vectors, 5, oov_range=0.01, seed=0)
    assert matrix.shape == (len(vocab), 5)
    assert matrix.dtype == np.float32
    assert np.all(matrix[PAD] == 0.0)
    np.testing.assert_array_equal(matrix[vocab.index["good"]], vectors["good"])
    np.testing.assert_array_equal(matrix[vocab.index["food"]], vectors["food"])
    oov_rows = [vocab.index[w] for w in ("<unk>", "<aspect>", "zzzz", "qqqq")]
    oov = matrix[oov_rows]
    assert np.all(np.abs(oov) <= 0.01)
    assert np.all(oov != 0.0)
    assert coverage == pytest.approx(2 / 4)


def test_embedding_matrix_is_deterministic_for_a_seed():
    vocab = _vocab(["a", "b"])
    first, _ = embedding_matrix(vocab, {}, 4, 0.25, seed=3)
    again, _ = embedding_matrix(vocab, {}, 4, 0.25, seed=3)
    other, coverage = embedding_matrix(vocab, {}, 4, 0.25, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert coverage == 0.0
    assert np.all(np.abs(first) <= 0.25)


def test_sentiment_matrix_rows_are_class_means_in_label_order():
    assert CLASS_ORDER == LABELS
    vectors = {"good": np.array([1.0, 0.0]), "great": np.array([3.0, 0.0]),
               "bad": np.array([0.0, 2.0]), "okay": np.array([-1.0, -1.0])}
    matrix, found = sentiment_matrix(vectors)
    np.testing.assert_allclose(matrix, [[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    assert found == {"positive": 2, "negative": 1, "neutral": 1}


def test_sentiment_matrix_without_any_word_of_a_class_raises():
    with pytest.raises(ValueError, match="no neutral lexicon word"):
        sentiment_matrix({"good": np.ones(2), "bad": np.ones(2)})


def test_packaged_glove_6b_50d_returns_50_dimensional_vectors():
    found, dim = lookup_vectors(PACKAGED, {"good", "food", "notawordxyzzy"}, expected_dim=50)
    assert dim == 50
    assert set(found) == {"good", "food"}
    assert found["good"].shape == (50,)
    assert np.isfinite(found["good"]).all() and np.abs(found["good"]).sum() > 0
    assert not np.array_equal(found["good"], found["food"])
    assert source_identity(PACKAGED).startswith("glove-6b-50d==")
