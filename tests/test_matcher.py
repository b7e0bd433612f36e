"""MetaCLIP matching: the reference's semantics, and the fast Matcher equal to plain Aho-Corasick."""
import json
import random

import pytest

from curate.metaclip.matcher import AhoCorasickMatcher, Matcher, normalize
from curate.inputs import bundled_sample

ENTRIES = [
    "dog", "cat", "New", "York", "City", "New York", "New York City", "York City",
    "hot dog", "dog", "U.S.", "café", "Zoë", "ice cream", "a", "A", ".", "the cat sat",
    "cat sat", "sat", "tab\there", "rock 'n' roll", "日本",
]


def ids(*names):
    return sorted(i for i, e in enumerate(ENTRIES) if e in names)


@pytest.fixture(scope="module", params=[Matcher, AhoCorasickMatcher])
def matcher(request):
    return request.param(ENTRIES)


def test_normalize_spaces_the_seven_marks_and_whitespace_controls():
    assert normalize("a,b.c;d:e?f!g`h") == " a , b . c ; d : e ? f ! g ` h "
    assert normalize("x\ty\nz\rw") == " x y z w "
    assert normalize("keep  double -dash (paren)") == " keep  double -dash (paren) "


@pytest.mark.parametrize("text,expected", [
    ("dog", ("dog",)),  # the whole caption, entry at start and end
    ("a dog.", ("a", "dog", ".")),  # a mark is its own token
    ("Dog", ()),  # case-sensitive
    ("dogs and hotdogs", ()),  # whole words only
    ("hot dog!", ("hot dog", "dog")),  # overlapping entries all count
    ("I love New York City", ("New", "York", "City", "New York", "New York City", "York City")),
    ("the U.S. flag", (".",)),  # "U.S." can never match; the spaced-out "." does
    ("un café, s'il vous plaît", ("café",)),
    ("Zoë and the cat sat", ("Zoë", "the cat sat", "cat", "cat sat", "sat")),
    ("ice\tcream", ("ice cream",)),  # tab becomes a space
    ("ice  cream", ()),  # runs of spaces are not collapsed
    ("rock 'n' roll", ("rock 'n' roll",)),
    ("日本", ("日本",)),  # no CJK special casing in v1
    ("日本語", ()),
    ("A cat", ("A", "cat")),
    ("", ()),
])
def test_match_cases(matcher, text, expected):
    assert matcher.match(text) == ids(*expected)


def test_duplicate_entries_yield_both_ids(matcher):
    assert matcher.match("my dog") == [0, 9]


@pytest.mark.parametrize("cls", [Matcher, AhoCorasickMatcher])
def test_space_only_and_empty_entries_follow_the_padding_rule(cls):
    # " " + "" + " " occurs wherever two spaces meet: a double space, or a mark at the end
    m = cls(["", "  ", " padded", "x"])
    assert m.match("a b") == []
    assert m.match("a  b") == [0]
    assert m.match("a.") == [0]
    assert m.match("a    b") == [0, 1]
    assert m.match("x  padded y") == [0, 2, 3]
    assert m.match("") == [0]  # the padded empty text is two spaces


def test_result_is_sorted_and_unique(matcher):
    out = matcher.match("dog dog dog cat dog")
    assert out == sorted(set(out))


def _random_entries(rng, vocab):
    entries = []
    for _ in range(3000):
        n = rng.choice([1, 1, 1, 2, 2, 3, 4])
        entries.append(" ".join(rng.choice(vocab) for _ in range(n)))
    entries += ["", " ", "x.y", "a,", "End", " lead", "trail ", "two  spaces"]
    return entries


def test_fast_matcher_equals_aho_corasick_on_real_and_random_captions():
    rng = random.Random(7)
    with open(f"{bundled_sample()}/pairs.jsonl", encoding="utf-8") as f:
        captions = [json.loads(line)["caption"] for line in f]
    vocab = sorted({w for c in captions for w in normalize(c).split(" ")})
    entries = _random_entries(rng, vocab)
    noise = [" ".join(rng.choice(vocab + ["", ",", "\t", "!"]) for _ in range(rng.randint(0, 25)))
             for _ in range(2000)]
    fast, plain = Matcher(entries), AhoCorasickMatcher(entries)
    texts = captions + noise
    expected = [plain.match(t) for t in texts]
    assert [fast.match(t) for t in texts] == expected
    assert fast.match_many(texts) == expected
    assert fast.match_many(texts[:1]) == expected[:1] and fast.match_many([]) == []


def test_match_many_keeps_texts_apart_and_handles_duplicates_and_unicode():
    m = Matcher(["a", "b", "a b", "x\ny", "a", "日本 語", "é"])
    texts = ["a", "b", "", "x", "y", "日本 語 é", "a b a"]
    assert m.match_many(texts) == [m.match(t) for t in texts]
    assert m.match_many(texts)[0] == [0, 4] and m.match_many(texts)[6] == [0, 1, 2, 4]
    assert Matcher([]).match_many(["a"]) == [[]] and Matcher(["\n"]).match("a") == []
