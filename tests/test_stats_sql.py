"""The statistics' building blocks against the references they replace: numpy's histogram bins
(DuckDB computes them), Arrow's caption lengths (counted from the UTF-8 bytes), the host
pattern's capture (read with string functions where the URL is plain)."""
from __future__ import annotations

import random
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.stats.caption_lengths import WHITESPACE, lengths
from curate.stats.downloads import HOST_PATTERN, NO_HOST, host_groups
from curate.stats.histogram import Histogram
from curate.stats.sql import histograms


def test_duckdb_bins_equal_numpys_on_and_beside_the_edges():
    edges = np.linspace(-1, 1, 801)  # the score bins: edges that are not exact binary fractions
    rng = np.random.default_rng(5)
    values = np.concatenate([edges, np.nextafter(edges, -2), np.nextafter(edges, 2), rng.uniform(-1.2, 1.2, 3000),
                             [np.inf, -np.inf, np.nan]])
    group = rng.random(len(values)) < 0.3
    con = duckdb.connect()
    con.register("ledger", pa.table({"x": pa.array(list(values) + [None], pa.float64()),
                                     "g": pa.array(list(group) + [True])}))
    found = histograms(con, "x", edges, {"all": "true", "some": "g"})
    for name, mask in (("all", np.ones(len(values), bool)), ("some", group)):
        want = Histogram(edges).add(values[mask])
        got = found[name]
        assert np.array_equal(got.counts, want.counts), name
        assert (got.under, got.over, got.n, got.low, got.high) == (want.under, want.over, want.n, want.low, want.high)
        assert got.total == want.total or abs(got.total - want.total) < 1e-9


def test_caption_lengths_equal_arrows_utf8_length_and_split_whitespace():
    random.seed(3)
    alphabet = list("ab é🙂中") + list(WHITESPACE) + ["\u200b", "\ufeff"]  # and two that are not white space
    captions = ["", " ", "  ", "   ", " a ", "  a  b  ", "\u3000\u3000", "x\u2003\u2003", None]
    captions += ["".join(random.choice(alphabet) for _ in range(random.randint(0, 12))) for _ in range(5000)]
    column = pa.chunked_array([pa.array(captions[:700]), pa.array(captions[700:])]).combine_chunks().slice(2)
    chars, words = lengths(column)
    want_chars = pc.utf8_length(column).to_numpy(zero_copy_only=False).astype(float)
    want_words = pc.list_value_length(pc.utf8_split_whitespace(column)).to_numpy(zero_copy_only=False).astype(float)
    assert np.array_equal(chars, want_chars, equal_nan=True)
    assert np.array_equal(words, want_words, equal_nan=True)
    plain = pa.array(["", " ", "  ", "a b", "  a  b  ", "a\tb\n", None, "x  "])  # ASCII only: the fast path
    assert np.array_equal(lengths(plain)[1], pc.list_value_length(pc.utf8_split_whitespace(plain)).to_numpy(
        zero_copy_only=False).astype(float), equal_nan=True)


def test_hosts_equal_the_host_patterns_capture():
    random.seed(7)
    schemes = ["http", "https", "HTTP", "ftp", "s3", "a+b.c-d", "1http", "", "h:t"]
    hosts = ["a.example.com", "B.Example.ORG", "[::1]", "[fe80::1%eth0]", "[bad", "user@host.com", "u:p@h.com",
             "h@x@y", "", "x.y:8080", "ü.de", "h?q", "h#f", "h/p", "@", ":80", "[::1]:443", "[a/b]"]
    tails = ["", "/", "/path", "?q=1", "#frag", "/p?x=@y", "/a:b"]
    urls = [random.choice(schemes) + random.choice(["://", ":/", "//", ":///"]) + random.choice(hosts)
            + random.choice(tails) for _ in range(5000)]
    urls += [None, "", "not a url", "://x", "mailto:a@b", "http://[::1", "http://a@[::1]:80/x", "HTTP://Ex.com:80"]
    con = duckdb.connect()
    con.register("t", pa.table({"url": pa.array(urls, pa.string()), "i": range(len(urls))}))
    query = host_groups("SELECT coalesce(url, '') AS u, i, 1 AS one FROM t", ("i",), ("one",))
    got = [h for h, _, n, one in sorted(con.execute(query).fetchall(), key=lambda row: row[1])]
    pattern = re.compile(HOST_PATTERN)
    want = [NO_HOST if not (m := pattern.match(u or "")) else m.group(1).lower() for u in urls]
    assert got == want
