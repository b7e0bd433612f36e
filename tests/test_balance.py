"""MetaCLIP balancing statistics and determinism (pure functions, no pipeline)."""
import math

import numpy as np

from curate.metaclip import balance
from curate.sample import make_uid


def _pool(n_head=20000, n_tail=300):
    """Captions matching only entry 0 (head), only entry 1 (tail), or both."""
    uids = [make_uid(f"u{i}", "c") for i in range(n_head + n_tail)]
    id_lists = [[0]] * n_head + [[1]] * n_tail
    counts = np.array([n_head, n_tail], dtype=np.int64)
    return uids, id_lists, counts


def test_tail_entries_are_kept_whole_and_head_entries_near_t():
    t = 500
    uids, id_lists, counts = _pool()
    kept, prob = balance.select([balance.uid_key(u) for u in uids], id_lists,
                                balance.entry_probabilities(counts, t), seed=0)
    head, tail = kept[:20000], kept[20000:]
    assert tail.all()  # count 300 <= t: p = 1
    p = t / 20000
    sd = math.sqrt(20000 * p * (1 - p))
    assert abs(head.sum() - t) < 4 * sd
    assert np.allclose(prob[:20000], p) and np.allclose(prob[20000:], 1.0)


def test_each_entry_selects_independently():
    # a caption with two head entries is kept with 1 - (1 - p)^2
    n, t = 40000, 2000
    uids = [make_uid(f"v{i}", "c") for i in range(n)]
    counts = np.array([n, n], dtype=np.int64)
    kept, prob = balance.select([balance.uid_key(u) for u in uids], [[0, 1]] * n,
                                balance.entry_probabilities(counts, t), seed=3)
    p = t / n
    expected = 1 - (1 - p) ** 2
    assert np.allclose(prob, expected)
    assert abs(kept.mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


def test_selection_is_a_function_of_uid_entry_and_seed():
    uids, id_lists, counts = _pool(2000, 10)
    keys = [balance.uid_key(u) for u in uids]
    p = balance.entry_probabilities(counts, 100)
    a, _ = balance.select(keys, id_lists, p, seed=1)
    b, _ = balance.select(keys[::-1], id_lists[::-1], p, seed=1)
    c, _ = balance.select(keys, id_lists, p, seed=2)
    assert (a == b[::-1]).all()  # order and batching do not matter
    assert (a != c).any()  # the seed does


def test_uniforms_are_uniform():
    u = balance.uniforms(np.arange(200000, dtype=np.uint64), np.zeros(200000, dtype=np.int64), 0)
    assert 0 <= u.min() and u.max() < 1
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert (abs(hist - 20000) < 600).all()


def test_auto_t_scales_metaclip_t_to_the_pool():
    assert balance.auto_t(1_600_000_000) == 20000
    assert balance.auto_t(3_200_000_000) == 40000
    assert balance.auto_t(1000) == balance.MIN_AUTO_T
