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
