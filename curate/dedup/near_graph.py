"""Exact and pHash near-duplicates found by the engine: every step groups small keyed arrays.

Each step is a GroupByKey on (step, part) of numpy record arrays (parts.py: the part count
follows the pool, so a worker holds one part, never the pool):

  Count     rows and hashed rows: one global sum of two numbers, the side input part counts follow
  Values    distinct pHash values, by value
  Bands     each value filed under its band keys (bands.py); pairs within the radius checked per
            bucket, found once: the pHash edges, sent to both of their values
  Round 1   m1(u) for every row (the two-hop rule, two_hop.py):
              Hubs    rows by (kind, value): the best per URL / sha256 / pHash value. A value held
                      by two rows or more tells each its best; a pHash value with edges offers its
                      best along them instead (singletons stop here)
              Spread  per pHash value with edges: the best of its own and its neighbours' offers,
                      told to its rows
              Rows    per row: the best it was told
  Round 2   the same over the rows with a relation, each offering its m1 to the values it shares: m2(u)
  Decide    a row whose m2 is another row is dropped naming it: drop records by batch id
  Keepers   drops counted per keeper, for the facts (groups, largest group)
"""
from __future__ import annotations

from functools import lru_cache

import apache_beam as beam
import numpy as np

from curate.dedup import bands
from curate.dedup import two_hop as H
from curate.dedup.decisions import by_batch
from curate.dedup.keys import KEY_DTYPE
from curate.dedup.options import DedupSettings
from curate.io.parts import ROWS_PER_PART, hash_bytes, mix, part_count, split

FACTS = "facts"
SPREAD = "spread"
ENTRY_DTYPE = np.dtype([("key", "<u8"), ("value", "<u8")])
ROW_ID_DTYPE = np.dtype([("batch", "S32"), ("pos", "<i4")])
# how much smaller than a (row, candidate) record the values of a step are: more of them per part
VALUES_PER_ROW, ENTRIES_PER_ROW = 16, 8


def _present(rows: np.ndarray, kind: str) -> np.ndarray:
    return rows["has_phash"] if kind == "phash" else rows[kind] != b""


def _value_hash(kind: str, values: np.ndarray) -> np.ndarray:
    return mix(values) if kind == "phash" else hash_bytes(values)


def _route(step, hashes: np.ndarray, array: np.ndarray, n_parts: int, tag=None):
    for part, rows in split(hashes % np.uint64(n_parts), array):
        yield (step, part), rows if tag is None else (tag, rows)


def _to_rows(messages: np.ndarray, n_parts: int):
    """Messages (row, candidate) to the Rows step of the row they are for."""
    yield from _route("row", hash_bytes(messages["row"]["batch"]), messages, n_parts)


@lru_cache(maxsize=64)
def _plan(phash_rows: int, radius: int):
    return bands.plan_bands(phash_rows, radius)


class _Sizes(beam.CombineFn):
    """(rows, rows with a pHash) of the pool."""

    def create_accumulator(self):
        return 0, 0

    def add_input(self, acc, keys):
        return acc[0] + len(keys), acc[1] + int(keys["has_phash"].sum())

    def merge_accumulators(self, accs):
        accs = list(accs)
        return sum(a[0] for a in accs), sum(a[1] for a in accs)

    def extract_output(self, acc):
        return acc


# --- pHash edges ----------------------------------------------------------------------------

def _values(keys, sizes, per_part):
    values = np.unique(keys["phash"][keys["has_phash"]])
    yield from _route("values", mix(values), values, part_count(sizes[1], per_part * VALUES_PER_ROW))


def _file_in_bands(item, sizes, radius, per_part):
    """Distinct values -> (key, value) entries of every band combination, by bucket part. A
    combination's entries are one slice: a part holds whole combinations, or hash-split shares
    of one when the pool needs more parts than there are combinations (no sort of all entries)."""
    _, arrays = item
    plan = _plan(sizes[1], radius)
    values = np.unique(np.concatenate(list(arrays)))
    key, value = bands.entries(values, plan)
    n_combos = len(plan.combos)
    shares = -(-part_count(sizes[1] * n_combos, per_part * ENTRIES_PER_ROW) // n_combos)
    for combo in range(n_combos):
        mine = slice(combo * len(values), (combo + 1) * len(values))
        entries = np.empty(len(values), ENTRY_DTYPE)
        entries["key"], entries["value"] = key[mine], value[mine]
        share = mix(key[mine]) % np.uint64(shares) if shares > 1 else np.zeros(len(values), np.uint64)
        for part, chunk in split(share + np.uint64(combo * shares), entries):
            yield ("bands", part), chunk


def _edges(item, sizes, radius, per_part):
    _, arrays = item
    entries = np.concatenate(list(arrays))
    a, b, largest = bands.bucket_pairs(entries["key"], entries["value"], _plan(sizes[1], radius))
    edges = np.empty(2 * len(a), H.EDGE_DTYPE)
    edges["a"], edges["b"] = np.r_[a, b], np.r_[b, a]
    yield beam.pvalue.TaggedOutput(FACTS, {"largest_bucket": largest})
    yield from _route("phash", mix(edges["a"]), edges, part_count(sizes[0], per_part), "edges")


class _Edges(beam.PTransform):
    """Keys -> every pair of distinct pHash values within the radius, both ways, by value part."""

    def __init__(self, radius: int, per_part: int, sizes):
        super().__init__()
        self.radius, self.per_part, self.sizes = radius, per_part, sizes

    def expand(self, keys):
        r, n, s = self.radius, self.per_part, self.sizes
        found = (keys | "Values" >> beam.FlatMap(_values, s, n) | "GroupValues" >> beam.GroupByKey()
                 | "FileInBands" >> beam.FlatMap(_file_in_bands, s, r, n) | "GroupBuckets" >> beam.GroupByKey()
                 | "Pairs" >> beam.FlatMap(_edges, s, r, n).with_outputs(FACTS, main="edges"))
        return found.edges, found[FACTS]


# --- one hop of the two-hop rule ------------------------------------------------------------

def _to_hubs(array, sizes, kinds, per_part):
    """A batch's keys (round 1) or (row, m1) pairs (round 2) to the Hubs parts of their values;
    in round 2 a row goes only to the values it shares (the others would tell it nothing)."""
    rows = array if array.dtype == KEY_DTYPE else array["row"]
    for kind in kinds:
        mine = _present(rows, kind)
        if array.dtype != KEY_DTYPE:
            mine &= (array["hubs"] & H.HUB_BITS[kind]) != 0
        yield from _route(kind, _value_hash(kind, rows[kind][mine]), array[mine],
                          part_count(sizes[0], per_part), "rows")


def _hub(item, sizes, keep, per_part):
    """One part of the values of one kind: each value's best candidate, told to its rows (two
    or more) or, for a pHash value with edges, offered to itself and its neighbours (Spread)."""
    (kind, _), tagged = item
    parts = {"rows": [], "edges": []}
    for tag, array in tagged:
        parts[tag].append(array)
    if not parts["rows"]:  # edges always come with their values' rows; nothing to do without
        return
    array = np.concatenate(parts["rows"])
    rows, xs = (array, array) if array.dtype == KEY_DTYPE else (array["row"], array["x"])
    value = rows[kind]
    best, group = H.best_of_groups([value], xs, keep)
    values = value[best]  # ascending: one per group
    linked = np.zeros(len(best), dtype=bool)
    edges = np.concatenate(parts["edges"]) if parts["edges"] else np.zeros(0, H.EDGE_DTYPE)
    if len(edges):
        linked = np.isin(values, edges["a"])
    told = ((np.bincount(group) >= 2) & ~linked)[group]
    n_parts = part_count(sizes[0], per_part)
    yield from _to_rows(H.pairs(rows[told], xs[best[group[told]]], H.HUB_BITS[kind]), n_parts)
    if not linked.any():
        return
    at = np.minimum(np.searchsorted(values, edges["a"]), len(values) - 1)
    along = values[at] == edges["a"]
    offers = np.empty(int(linked.sum()) + int(along.sum()), H.VALUE_DTYPE)
    offers["value"] = np.concatenate([values[linked], edges["b"][along]])
    offers["rec"] = np.concatenate([xs[best[linked]], xs[best[at[along]]]])
    members = np.empty(int(linked[group].sum()), H.VALUE_DTYPE)
    members["value"], members["rec"] = value[linked[group]], rows[linked[group]]
    for tag, array in (("offer", offers), ("member", members)):
        for routed in _route(SPREAD, mix(array["value"]), array, n_parts, tag):
            yield beam.pvalue.TaggedOutput(SPREAD, routed)


def _spread(item, sizes, keep, per_part):
    """One part of the pHash values with edges: the best offer per value, told to its rows."""
    _, tagged = item
    parts = {"offer": [], "member": []}
    for tag, array in tagged:
        parts[tag].append(array)
    if not parts["member"]:
        return
    offers, members = np.concatenate(parts["offer"]), np.concatenate(parts["member"])
    best, _ = H.best_of_groups([offers["value"]], offers["rec"], keep)
    at = np.searchsorted(offers["value"][best], members["value"])  # every member's value offers itself
    yield from _to_rows(H.pairs(members["rec"], offers["rec"][best[at]], H.HUB_BITS["phash"]),
                        part_count(sizes[0], per_part))


def _best_per_row(item, keep):
    _, arrays = item
    yield H.best_per_row(np.concatenate(list(arrays)), keep)


class _Hop(beam.PTransform):
    """(rows, candidates) -> for every row with a relation, the best candidate of N[row]."""

    def __init__(self, cfg: DedupSettings, per_part: int, sizes, edges):
        super().__init__()
        self.cfg, self.per_part, self.sizes, self.edges = cfg, per_part, sizes, edges

    def expand(self, offered):
        cfg, n, s = self.cfg, self.per_part, self.sizes
        kinds = [k for k, on in (("url", cfg.url), ("sha", cfg.sha), ("phash", cfg.phash_radius is not None))
                 if on]
        hubs = [offered | "ToHubs" >> beam.FlatMap(_to_hubs, s, kinds, n)]
        if self.edges is not None:
            hubs.append(self.edges)
        told = (hubs | "AllToHubs" >> beam.Flatten() | "GroupHubs" >> beam.GroupByKey()
                | "Hubs" >> beam.FlatMap(_hub, s, cfg.keep, n).with_outputs(SPREAD, main="told"))
        spread = (told[SPREAD] | "GroupSpread" >> beam.GroupByKey()
                  | "Spread" >> beam.FlatMap(_spread, s, cfg.keep, n))
        return ((told.told, spread) | "AllTold" >> beam.Flatten() | "GroupRows" >> beam.GroupByKey()
                | "BestPerRow" >> beam.FlatMap(_best_per_row, cfg.keep))


# --- decisions and facts --------------------------------------------------------------------

def _decide(final, sizes, cfg: DedupSettings, per_part):
    drops, keepers, counts = H.decide(final, cfg.url, cfg.sha, cfg.phash_radius)
    yield beam.pvalue.TaggedOutput(FACTS, counts)
    ids = np.empty(len(keepers), ROW_ID_DTYPE)
    ids["batch"], ids["pos"] = keepers["batch"], keepers["pos"]
    for routed in _route("keeper", hash_bytes(ids["batch"]), ids, part_count(sizes[0], per_part)):
        yield beam.pvalue.TaggedOutput("keepers", routed)
    yield from by_batch(drops)


def _keeper_facts(item):
    _, arrays = item
    _, counts = np.unique(np.concatenate(list(arrays)), return_counts=True)
    yield {"groups": len(counts), "largest_group": 1 + int(counts.max())}


class _MergeFacts(beam.CombineFn):
    """Partial counts of the steps -> the facts stats.json shows (zeros on an empty pool)."""

    def __init__(self, cfg: DedupSettings):
        self.cfg = cfg

    def create_accumulator(self):
        return {"rows": 0, "phash_rows": 0, "dropped": 0, "chained": 0, "groups": 0, "largest_group": 0,
                "largest_bucket": 0, "dropped_by_reason": {r.decode(): 0 for r in H.REASONS}}

    def add_input(self, acc, partial):
        for name, value in partial.items():
            if name == "dropped_by_reason":
                for reason, n in value.items():
                    acc[name][reason] += n
            elif name.startswith("largest_"):
                acc[name] = max(acc[name], value)
            else:
                acc[name] += value
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        for other in accs[1:]:
            self.add_input(accs[0], other)
        return accs[0]

    def extract_output(self, acc):
        cfg, radius = self.cfg, self.cfg.phash_radius
        facts = {"rows": acc["rows"], "methods": [m for m, on in (("url", cfg.url), ("sha256", cfg.sha),
                                                                   ("phash", radius is not None)) if on]}
        if radius is not None:
            plan = _plan(acc["phash_rows"], radius)
            facts.update(phash_radius=radius, phash_rows=acc["phash_rows"], largest_bucket=acc["largest_bucket"],
                         index=plan.describe() if plan else "equal hashes only")
        facts.update({k: acc[k] for k in ("dropped", "dropped_by_reason", "groups", "chained")})
        facts["largest_group"] = max(acc["largest_group"], 1 if acc["rows"] else 0)
        facts.update(keep=cfg.keep, score_field=cfg.score_field if cfg.keep == "best_score" else None)
        return "near", facts


def _sizes_facts(sizes):
    yield {"rows": sizes[0], "phash_rows": sizes[1]}


class FindNearDuplicates(beam.PTransform):
    """Every batch's keys -> (drop records keyed by batch id, ("near", facts)), by grouping only.

    `rows_per_part`: about how many rows one grouped step holds (tests make it small to spread a
    tiny pool over many parts); the result does not depend on it.
    """

    def __init__(self, cfg: DedupSettings, rows_per_part: int = ROWS_PER_PART):
        super().__init__()
        self.cfg = cfg
        self.per_part = rows_per_part

    def expand(self, keys):
        cfg, n = self.cfg, self.per_part
        counted = keys | "Count" >> beam.CombineGlobally(_Sizes())
        sizes = beam.pvalue.AsSingleton(counted)
        partial = [counted | "SizeFacts" >> beam.FlatMap(_sizes_facts)]
        edges = None
        if cfg.phash_radius:
            edges, bucket_facts = keys | "Edges" >> _Edges(cfg.phash_radius, n, sizes)
            partial.append(bucket_facts)
        m1 = keys | "Round1" >> _Hop(cfg, n, sizes, edges)
        m2 = m1 | "Round2" >> _Hop(cfg, n, sizes, edges)
        decided = m2 | "Decide" >> beam.FlatMap(_decide, sizes, cfg, n).with_outputs(FACTS, "keepers", main="drops")
        partial.append(decided[FACTS])
        partial.append(decided.keepers | "GroupKeepers" >> beam.GroupByKey() | "KeeperFacts" >> beam.FlatMap(_keeper_facts))
        facts = partial | "AllFacts" >> beam.Flatten() | "MergeFacts" >> beam.CombineGlobally(_MergeFacts(cfg))
        return decided.drops, facts
