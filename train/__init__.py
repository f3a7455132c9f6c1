"""Training, evaluation, checkpoints, prediction: the jobs main.py dispatches to."""
