"""stats.json for a run: the funnel, drops by reason, shards and what each stage reported."""
from __future__ import annotations

import json
from collections import Counter

from curate.io import files as fs, strict_json

STATS_FILE = "stats.json"


def assemble(ledger_parts: list[dict], shards: list[dict], url_parts: list[dict],
             facts: dict[str, dict], header: dict) -> dict:
    by_reason: Counter = Counter()
    blocked: Counter = Counter()
    for part in ledger_parts:
        by_reason.update(part["by_reason"])
        blocked.update(part.get("by_block_list", {}))
    kept = by_reason.pop("kept", 0)
    shards = sorted(shards, key=lambda s: s["shard"])
    return {
        **header,
        "inputs": kept + sum(by_reason.values()),
        "kept": kept,
        "kept_in_shards": sum(s["count"] for s in shards),
        "kept_as_urls": sum(p["rows"] for p in url_parts),
        "dropped": sum(by_reason.values()),
        "dropped_by_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "blocked_by_list": dict(sorted(blocked.items())),
        "shards": shards,
        "ledger_parts": sorted(p["part"] for p in ledger_parts),
        "curated_url_parts": sorted(p["part"] for p in url_parts),
        "stages": facts,
    }


def write_stats(output: str, stats: dict) -> None:
    fs.write_bytes(fs.join(output, STATS_FILE), strict_json.dumps(stats, indent=2, sort_keys=False).encode())


def read_stats(output: str) -> dict:
    return json.loads(fs.read_bytes(fs.join(output, STATS_FILE)))
