"""The project's own sentiment lexicon: words whose averaged vectors initialise the guide capsules
(paper Section 3, capsule-guided routing: one row per class, positive / negative / neutral)."""
import numpy as np

SENTIMENT_WORDS = {
    "positive": """good great excellent amazing awesome delicious tasty wonderful fantastic perfect
        best nice friendly fresh lovely attentive outstanding superb pleasant helpful cozy love
        loved enjoy enjoyed impressive incredible beautiful favorite terrific fabulous generous
        yummy happy recommend glad satisfied reasonable brilliant fine warm""",
    "negative": """bad terrible awful horrible poor worst rude disappointing disappointed bland
        overpriced slow dirty cold disgusting mediocre stale greasy unfriendly expensive noisy
        hate hated worse lousy nasty inattentive soggy burnt salty boring unpleasant sad angry
        annoying sloppy tasteless ugly wrong rotten gross""",
    "neutral": """ordinary average okay normal standard regular usual typical plain common general
        moderate simple basic neutral medium middle decent fair acceptable adequate casual
        routine conventional everyday mainstream some several other various""",
}
CLASS_ORDER = ("positive", "negative", "neutral")  # matches xml_reader.LABELS


def lexicon_words():
    return {cls: SENTIMENT_WORDS[cls].split() for cls in CLASS_ORDER}


def sentiment_matrix(vectors):
    """(3, d) matrix: row k = mean vector of class k's lexicon words found in `vectors` (word -> array).

    Returns (matrix, {class: number of words found}).
    """
    rows, found = [], {}
    for cls, words in lexicon_words().items():
        hits = [vectors[w] for w in words if w in vectors]
        if not hits:
            raise ValueError(f"no {cls} lexicon word has a word vector")
        found[cls] = len(hits)
        rows.append(np.mean(hits, axis=0))
    return np.stack(rows).astype(np.float32), found
