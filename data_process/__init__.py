"""Raw XML -> tokenised, indexed arrays (.npz), vocabulary, word vectors, sentiment matrix."""
