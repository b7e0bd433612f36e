"""Per-sample filters: each rule is `rule(sample) -> None (keep) | detail (drop)`."""
