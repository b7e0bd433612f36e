"""The pool-fraction cut: exact k-th best score over the whole pool, whatever the bundle split."""
import json
import math

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from curate.score.pool_cut import PoolCut, key_to_score, keep_count, sort_keys


def test_sort_keys_order_like_the_scores_and_invert():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.2, 0.3, 5000).astype(np.float32),
                             np.array([-1, -0.0, 0.0, 1, 1e-38, -1e-38, 0.28], dtype=np.float32)])
    keys = sort_keys(scores)
    order = np.argsort(scores, kind="stable")
    assert (np.diff(keys[order].astype(np.int64)) >= 0).all()
    assert all(key_to_score(int(k)) == float(s) or (s == 0 and key_to_score(int(k)) == 0)
               for k, s in zip(keys, scores))


def _exact_threshold(scores: np.ndarray, fraction: float) -> float:
    k = keep_count(fraction, len(scores))
    return float(np.sort(scores)[::-1][k - 1]) if k else math.inf


def _save(value, path):
    with open(path, "w") as f:
        json.dump(value, f)


def _run_cut(scores: np.ndarray, fractions: dict, chunk: int, tmp_path) -> dict:
    """Every fraction's cut over the same scores, fed in chunks of `chunk` (one pipeline)."""
    chunks = [{role: scores[i:i + chunk] for role in fractions} for i in range(0, len(scores), chunk)]
    path = str(tmp_path / f"cut-{chunk}.json")
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions([])) as p:
        p | beam.Create(chunks, reshuffle=True) | PoolCut(fractions) | beam.Map(_save, path)
    with open(path) as f:
        return json.load(f)


FRACTIONS = {"thirty": 0.3, "dfn": 0.15, "all": 1.0, "one": 0.0004}


@pytest.mark.parametrize("chunk", [1, 97, 5000])
def test_cut_keeps_the_right_count_whatever_the_split(chunk, tmp_path):
    rng = np.random.default_rng(7)
    # a known distribution: 2,000 distinct scores, plus 200 that tie at one value
    scores = np.concatenate([rng.uniform(-0.2, 0.5, 2000), np.full(200, 0.1)]).astype(np.float32)
    rng.shuffle(scores)
    cuts = _run_cut(scores, FRACTIONS, chunk, tmp_path)
    for role, fraction in FRACTIONS.items():
        k = keep_count(fraction, len(scores))
        expected = _exact_threshold(scores, fraction)
        cut = cuts[role]
        assert cut["threshold"] == expected
        assert cut["pool"] == len(scores) and cut["keep"] == k
        assert cut["at_or_above"] == int((scores >= np.float32(expected)).sum())
        if expected != np.float32(0.1):
            assert cut["at_or_above"] == k  # no tie at the cut: exactly k kept


def test_ties_at_the_cut_are_all_kept(tmp_path):
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1], dtype=np.float32)
    cut = _run_cut(scores, {"clip": 0.4}, 2, tmp_path)["clip"]  # k = 2: the 2nd best ties with two more
    assert cut["threshold"] == np.float32(0.5) and cut["keep"] == 2 and cut["at_or_above"] == 4


def test_empty_pool_and_zero_keep(tmp_path):
    assert _run_cut(np.array([], dtype=np.float32), {"clip": 0.5}, 10, tmp_path)["clip"]["threshold"] == math.inf
    cut = _run_cut(np.array([0.3, 0.2], dtype=np.float32), {"clip": 0.2}, 1, tmp_path)["clip"]  # round(0.4) = 0
    assert cut["keep"] == 0 and cut["threshold"] == math.inf and cut["at_or_above"] == 0
