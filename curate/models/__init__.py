"""open_clip models by name: resolve what a user named (and check its activation), load, embed.

No Beam imports here: the model is testable alone; `curate/score/` is the Beam glue.
"""
