"""Scoring stages: open_clip CLIP / DFN scores via Beam RunInference, and the cuts on them."""
