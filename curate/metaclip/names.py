"""The names MetaCLIP writes, in one place: reasons, metrics, ledger columns, the counts' tag.

Whatever reads a MetaCLIP run (the stage, statistics, tests) names the same strings.
"""
from __future__ import annotations

from curate.io import verdicts

NAME = "metaclip"  # the prefix of MetaCLIP's reasons and metrics
JUDGED = f"{NAME}_in"  # captions that reached matching (the balance judges do not count again)

NO_MATCH = "no_match"  # the caption matches no metadata entry
BALANCED_OUT = "balanced_out"  # none of its entries selected the caption
NO_LANGUAGE_METADATA = "no_language_metadata"  # MetaCLIP 2: no metadata list for the caption's language


ENTRY_IDS = "entry_ids"  # ledger column: the caption's matched entry ids
KEEP_PROBABILITY = "metaclip_keep_prob"  # ledger column: 1 - prod(1 - p_e) over its entries
METACLIP_T = "metaclip_t"  # MetaCLIP 2: the t (of the caption's language) that decided the row
COUNTS = "entry_counts"  # the tagged output of matching: entry counts of a batch or bundle


def reason(detail: str) -> str:
    """`metaclip:<detail>`, the ledger reason (Judge writes the same for its details)."""
    return verdicts.reason(NAME, detail)
