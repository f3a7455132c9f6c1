"""Inference from a trained checkpoint: the Python API, request reading, test, explain, serve (HTTP)."""
