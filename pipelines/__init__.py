"""Named recipes: each module has NAME, SUMMARY, STAGES (an ordered list of stages) and DEFAULTS
(the flag defaults it changes), and optionally check(run, stages). `curate.recipes` finds them."""
