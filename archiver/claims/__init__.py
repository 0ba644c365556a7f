"""The claims: the rule matcher (rules), the learned matcher (matcher) and its
embedder (semantic), word keys (textkeys), topic filters, and training.

Imports archiver.text only (tests/test_layers.py).
"""
