"""Named recipes: each module has NAME, SUMMARY, DEFAULTS, prepare(options, source), build(flow)."""
