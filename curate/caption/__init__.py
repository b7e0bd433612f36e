"""Synthetic captions: an open_clip CoCa in the graph (RunInference), kept beside the alt-text."""
