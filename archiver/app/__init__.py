"""What a check run is made of, above the stages: the pool worker, the story's
files (seeds, claimsfile), schedules, the digest's composition and export.

Imports archiver.text, archiver.claims and archiver.net (tests/test_layers.py);
archiver/pipeline.py wires it all together.
"""
