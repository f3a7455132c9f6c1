"""The bottom of the import graph: pieces every package shares (errors, atomic writes, label names,
config-schema helpers). Nothing here imports another package of the project.

Imports run one way: main -> train -> src -> data_process -> common.
"""
