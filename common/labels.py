"""The three sentiment classes; a label index is a position in LABELS."""
LABELS = ("positive", "negative", "neutral")
LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
DROPPED_POLARITIES = ("conflict",)  # SemEval-2014 polarity the paper drops (and we count)
