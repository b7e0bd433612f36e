"""The short report printed at the end of a run."""
from __future__ import annotations


def format_summary(stats: dict) -> str:
    lines = [
        f"curate {stats['pipeline']}: {stats['inputs']:,} inputs -> {stats['kept']:,} kept "
        f"({stats['kept_in_shards']:,} in {len(stats['shards'])} shard(s), "
        f"{stats['kept_as_urls']:,} in the curated URL list), {stats['dropped']:,} dropped",
    ]
    for reason, n in stats["dropped_by_reason"].items():
        lines.append(f"  dropped {reason:<32} {n:>10,}")
    blocked = stats.get("blocked_by_list")
    if blocked:  # how many, never which: the ledger has the uids and URLs for the report
        per_list = ", ".join(f"{name} {n:,}" for name, n in blocked.items())
        lines.append(f"  safety: {sum(blocked.values()):,} sample(s) on block lists ({per_list})")
    metaclip = stats["stages"].get("MetaCLIP")
    if metaclip:
        lines.append(
            f"  metaclip: t = {metaclip['t']:g} ({metaclip['t_source']}); "
            f"{metaclip['entries_matched']:,} of {metaclip['metadata_entries']:,} entries matched, "
            f"{metaclip['entries_over_t']:,} over t")
        from curate.stats.named_entries import top_line

        if top_line(metaclip):
            lines.append(f"  metaclip: commonest entries {top_line(metaclip)}")
    lines.append(f"  input: {stats['source']}")
    lines.append(f"  output: {stats['output']} (ledger/, shards/, stats.json)  wall time {stats['wall_time_s']:.1f} s")
    return "\n".join(lines)
