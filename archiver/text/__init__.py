"""Text stages, all pure: page bytes to article text (extract, selection, shells),
its stable form (normalize), its sentences (segment), two texts to a change (diff,
significance), the fingerprint shortcut, and rendering a change for people.

Imports nothing else from archiver/ but its own modules (tests/test_layers.py).
"""
