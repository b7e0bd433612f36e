"""MetaCLIP 2 (worldwide): padding rule, per-language thresholds, balancing, both graphs.

The matcher is checked against a plain implementation written from the reference's
`get_spaced_metadata` / `spacing` (a substring test per entry); t_to_p / p_to_t against
hand-computed values; keep shares against 1 - prod(1 - p_e) within binomial bounds.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import UsageError
from curate.metaclip import languages, worldwide
from curate.metaclip.matcher import Matcher
from curate.stats.worldwide import metaclip2_languages
from curate.metaclip.padding import CORRECTED_RANGES, REFERENCE_RANGES, pattern, pattern_function
from metadata import build
from tests.conftest import read_ledger, run_curate
from tests.one_graph_cases import worldwide_rows

CJK_LIKE = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF), (0x2E80, 0x2EFF), (0x2F00, 0x2FDF),
            (0x2FF0, 0x2FFF), (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF),
            (0x0F00, 0x0FFF)]
ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
FULL_WIDTH = "，。、；：？！“”‘’（）【】《》〈〉「」『』～—"


def plain_match(entries: list[str], text: str, extra_ranges=()) -> list[int]:
    """MetaCLIP 2's matching, one substring test per entry (DESIGN.md's ranges and marks)."""
    def similar(c):
        return c in ASCII_PUNCTUATION or c in FULL_WIDTH or any(lo <= ord(c) <= hi
                                                                 for lo, hi in CJK_LIKE + list(extra_ranges))
    spaced = f" {text.strip()} "
    for mark in ",.;:?!`":
        spaced = spaced.replace(mark, f" {mark} ")
    for char in "\t\n\r":
        spaced = spaced.replace(char, " ")
    found = []
    for i, e in enumerate(entries):
        key = ("" if similar(e[0]) else " ") + e + ("" if similar(e[-1]) else " ")
        if key in spaced:
            found.append(i)
    return found


ENTRIES = ["猫", "东京", "東京", "桜", "富士山", "ラーメン", "ゴールデンタイム", "ありがとう", "「ありがとう」",
           "ราคา", "ช้าง", "ตลาดน้ำ", "서울", "김치", "C++", "(株)", "Tokyo", "Café", "cat", "New York", "York",
           "iPhone", "ケース", "新品", "—", "2020", "オリンピック", "黑色", "《红楼梦》", "ສະບາຍດີ", "Paris."]
CAPTIONS = [
    "一只猫坐在窗台上", "東京 Tokyo 2020 オリンピック", "東京タワーと桜", "ゴールデンタイム", "Golden Time ゴールデンタイム",
    "「ありがとう」と書かれたカード", "verena l-carnitine apple plus ราคา", "ช้างไทยในป่า", "ตลาดน้ำดำเนินสะดวก",
    "서울의 밤 풍경", "맛있는 김치찌개", "C++ プログラミング入門", "C++11 guide", "(株)ソニー", "Café de Paris — menu",
    "a cat in New York.", "NewYork cat", "iPhone 15 ケース（透明）- 新品", "Samsung 手机 壳 黑色", "《红楼梦》插图",
    "ສະບາຍດີ ລາວ", "  \u3000東京\u3000 ", "Paris. France", "\tcat\n", "", "cat!", "cats", "2020年",
]


@pytest.mark.parametrize("ranges,extra", [("reference", ()), ("corrected", CORRECTED_RANGES[len(REFERENCE_RANGES):])])
def test_v2_matching_equals_plain_reference(ranges, extra):
    matcher = Matcher(ENTRIES, key=pattern_function(ranges), strip=True)
    for caption in CAPTIONS:
        assert matcher.match(caption) == plain_match(ENTRIES, caption, extra), caption


def test_padding_rule_reference_gap_and_correction():
    assert pattern("東京") == "東京" and pattern("cat") == " cat " and pattern("C++") == " C++"
    assert pattern("ราคา") == "ราคา" and pattern("「ありがとう」") == "「ありがとう」"
    assert pattern("ゴールデンタイム") == " ゴールデンタイム "  # kana: padded by the reference
    assert pattern("ゴールデンタイム", CORRECTED_RANGES) == "ゴールデンタイム"
    assert pattern("서울", CORRECTED_RANGES) == "서울" and pattern("서울") == " 서울 "
    reference = Matcher(["タイム", "서울"], key=pattern_function("reference"), strip=True)
    corrected = Matcher(["タイム", "서울"], key=pattern_function("corrected"), strip=True)
    assert reference.match("ゴールデンタイム 서울의") == [] and corrected.match("ゴールデンタイム 서울의") == [0, 1]


def test_t_to_p_and_p_to_t_hand_computed():
    counts = np.array([0, 1, 2, 3, 10])
    assert worldwide.t_to_p(counts, 3) == pytest.approx(3 / 16)  # 0 + 1 + 2 of 16
    assert worldwide.t_to_p(counts, 11) == 1.0 and worldwide.t_to_p(counts, 0) == 0.0
    assert worldwide.t_to_p(np.zeros(3), 5) == 0.0
    # sorted [0, 1, 4, 5], cumulative share [0, .1, .5, 1]
    assert worldwide.p_to_t(np.array([5, 1, 0, 4]), 0.5) == 4
    assert worldwide.p_to_t(np.array([5, 1, 0, 4]), 0.05) == 0  # a tie: the first position wins
    assert worldwide.p_to_t(np.array([5, 1, 0, 4]), 0.9) == 5
    assert worldwide.p_to_t(np.zeros(4), 0.5) == 0.0


def test_thresholds_per_language():
    counted = {"languages": {"en": (np.array([1, 2, 3, 10]), 20, 12), "de": (np.array([0, 1, 4, 5]), 9, 7)},
               "no_language_metadata": {}}
    ts, p, source = worldwide.thresholds(counted, 3.0)
    assert p == pytest.approx(3 / 16) and ts["en"] == 3.0
    assert ts["de"] == worldwide.p_to_t(np.array([0, 1, 4, 5]), 3 / 16) == 1  # shares [0, .1, .5, 1]
    assert "--t" in source
    no_english = {"languages": {"de": (np.array([0, 1, 4, 5]), 9, 7)}, "no_language_metadata": {}}
    assert worldwide.thresholds(no_english, 3.0)[0] == {"de": 3.0}


def test_language_table():
    table = languages.parse_language_map(None)
    assert languages.metadata_language("yue", {"zh", "en"}, table) == "zh"
    assert languages.metadata_language("yue", {"zh", "zh_yue"}, table) == "zh_yue"
    assert languages.metadata_language("zh_classical", {"zh"}, table) == "zh"
    assert languages.metadata_language("ko", {"zh", "en"}, table) is None
    custom = languages.parse_language_map("ko=ja,yue=")
    assert languages.metadata_language("ko", {"ja"}, custom) == "ja"
    assert languages.metadata_language("yue", {"zh"}, custom) is None
    assert languages.metadata_language("a", {"x"}, {"a": "b", "b": "a"}) is None  # a cycle ends
    with pytest.raises(UsageError):
        languages.parse_language_map("nonsense")


def test_keep_shares_within_binomial_bounds():
    n = 20000
    rng = np.random.default_rng(0)  # only to make test uids
    uids = [f"{x:016x}{x:016x}" for x in rng.integers(0, 2**63, n)]
    counts = {"de": np.array([40, 10, 4]), "th": np.array([10, 50])}
    counted = {"languages": {k: (v, n, n) for k, v in counts.items()}, "no_language_metadata": {}}
    groups = [("de", [0]), ("de", [0, 1]), ("de", [1, 2]), ("th", [0, 1]), ("th", [1])]
    langs = [groups[i % len(groups)][0] for i in range(n)]
    ids = [groups[i % len(groups)][1] for i in range(n)]
    kept, prob, used_t = worldwide.select(uids, langs, ids, counted, 2.0, seed=3)
    ts = worldwide.thresholds(counted, 2.0)[0]
    for g, (lang, entry_ids) in enumerate(groups):
        rows = np.arange(g, n, len(groups))
        p_e = np.minimum(1.0, ts[lang] / counts[lang][entry_ids])
        want = 1 - np.prod(1 - p_e)
        assert prob[rows] == pytest.approx(want) and (used_t[rows] == ts[lang]).all()
        sigma = math.sqrt(want * (1 - want) / len(rows))
        assert abs(kept[rows].mean() - want) < 4 * sigma + 1e-9, (lang, entry_ids)
    again = worldwide.select(uids, langs, ids, counted, 2.0, seed=3)[0]
    assert (again == kept).all()
    assert (worldwide.select(uids, langs, ids, counted, 2.0, seed=4)[0] != kept).any()


def test_builder_languages_mode(tmp_path):
    released = tmp_path / "released"
    released.mkdir()
    (released / "zh.json").write_text(json.dumps({"猫": "wiki", "东京": "title"}, ensure_ascii=False))
    (released / "zh_yue.json").write_text(json.dumps(["佢哋", "猫"], ensure_ascii=False))
    words = tmp_path / "th.txt"
    words.write_text("ช้าง\t5\nราคา\t9\n# a comment\n", encoding="utf-8")
    build.main(["--languages", "zh,th,xx", "--out_dir", str(tmp_path / "out"), "--wordfreq_top", "0",
                "--metaclip2_dir", str(released), "--word_list", f"th={words}"])
    assert json.loads((tmp_path / "out" / "zh.json").read_text()) == ["猫", "东京", "佢哋"]
    assert json.loads((tmp_path / "out" / "th.json").read_text()) == ["ราคา", "ช้าง"]
    assert not (tmp_path / "out" / "xx.json").exists()


def test_shipped_languages():
    sizes = worldwide.language_sizes(None)
    assert {"en", "de", "fr", "es", "zh", "ja", "th"} <= set(sizes) and min(sizes.values()) > 5000


# --- both graphs -------------------------------------------------------------------------


def test_language_facts_match_the_ledger(tmp_path):
    """stats.json's per-language facts (and the notebook's table) count what the ledger holds
    (the decisions themselves are checked against stored expectations: test_one_graph.py)."""
    rows = worldwide_rows()
    os.makedirs(tmp_path / "in")
    for i in range(3):
        pq.write_table(pa.Table.from_pylist(rows[i::3]), tmp_path / "in" / f"urls{i}.parquet", row_group_size=20)
    stats = run_curate("--pipeline", "metaclip2", "--input", str(tmp_path / "in" / "urls*.parquet"),
                       "--download=false", "--batch_size", "16", "--t", "2", output=tmp_path / "out")
    reasons = stats["dropped_by_reason"]
    for reason in ("metaclip:no_match", "metaclip:balanced_out", "metaclip:no_language_metadata"):
        assert reasons.get(reason, 0) > 0, reason
    facts = stats["stages"]["MetaCLIP"]
    assert facts["version"] == 2 and facts["t"] == 2
    assert sum(facts["no_language_metadata"].values()) == reasons["metaclip:no_language_metadata"]
    ledger = read_ledger(tmp_path / "out")
    matched = ledger[ledger.metaclip_t.notna()]
    for lang, row in facts["languages"].items():
        in_lang = matched[matched.language == lang]
        assert row["matched"] == len(in_lang) and row["kept"] == int((in_lang.status == "kept").sum()) + int(
            (in_lang.reason.fillna("").str.startswith("dedup:")).sum())
        assert (in_lang.metaclip_t == row["t"]).all()
    assert {"th", "zh", "ja"} <= set(matched.language)
    per_language, missing = metaclip2_languages(stats)  # the notebook's table
    assert set(per_language.index) == set(facts["languages"]) and missing.captions_dropped.sum() == sum(
        facts["no_language_metadata"].values())
    assert ledger[ledger.reason == "metaclip:no_language_metadata"].entry_ids.isna().all()


def test_metaclip_version_2_flag_and_bad_folder(tmp_path):
    path = tmp_path / "urls.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in worldwide_rows()[-60:]),
                    encoding="utf-8")
    stats = run_curate("--pipeline", "metaclip", "--metaclip_version", "2", "--input", str(path), "--download=false",
                       "--metaclip_cjk_ranges", "corrected", "--dedup", "none", output=tmp_path / "v2")
    assert stats["stages"]["MetaCLIP"]["version"] == 2 and stats["kept"] > 0
    with pytest.raises(UsageError, match="--metadata"):
        run_curate("--pipeline", "metaclip2", "--metadata", str(tmp_path / "nowhere"), output=tmp_path / "bad")
