"""DataComp's basic filter rules at their boundaries, and the offline fastText language model."""
import pytest

from curate.filters import language
from curate.filters.basic import aspect_ratio, basic_filter, caption_chars, caption_words, min_side
from curate.sample import Sample


def _sample(caption="a dog on the beach", width=640, height=480):
    return Sample("0" * 32, caption=caption, width=width, height=height)


@pytest.mark.parametrize("caption, expected", [
    ("two words", "caption_words"),  # DataComp: more than 2 words
    ("three small words", None),
    ("  spaced   out\twords  ", None),
    ("", "no_caption"),
    (None, "no_caption"),
])
def test_caption_words(caption, expected):
    assert caption_words(_sample(caption)) == expected


@pytest.mark.parametrize("caption, expected", [("a b c", "caption_chars"), ("ab c d", None), ("abcdef", None),
                                               ("abcde", "caption_chars")])
def test_caption_chars_more_than_five(caption, expected):
    assert caption_chars(_sample(caption)) == expected


@pytest.mark.parametrize("width, height, expected", [
    (200, 200, None), (199, 800, "min_side"), (800, 199, "min_side"), (200, 600, None), (None, None, None),
])
def test_min_side_at_least_200(width, height, expected):
    assert min_side(_sample(width=width, height=height)) == expected


@pytest.mark.parametrize("width, height, expected", [
    (600, 200, None), (200, 600, None), (601, 200, "aspect_ratio"), (200, 601, "aspect_ratio"), (300, 300, None),
])
def test_aspect_ratio_at_most_3(width, height, expected):
    assert aspect_ratio(_sample(width=width, height=height)) == expected


@pytest.mark.parametrize("caption, lang", [
    ("a family is sitting down at a table to have cake", "en"),
    ("Ein Hund läuft durch den verschneiten Park", "de"),
    ("un chat noir dort sur le toit de la maison", "fr"),
    ("A DOG RUNNING ON THE BEACH\nAT SUNSET", "en"),
])
def test_language_from_the_bundled_lid176_model(caption, lang):
    found, score = language.detect(caption)
    assert found == lang and 0 < score <= 1


def test_language_model_is_the_one_shipped_in_the_package():
    detector = language._detector()
    assert detector.config.model == "lite"  # "auto" would try to download lid.176.bin
    assert detector._models.get("low_memory") is not None and "high_memory" not in detector._models


def test_the_first_failing_rule_names_the_reason_and_language_is_recorded():
    stage = basic_filter()
    stage.setup()
    cases = [
        (_sample("a photo of a red bus in london"), None),
        (_sample("bus"), "filter:caption_words"),
        (_sample("un bus rouge à paris devant la tour"), "filter:language"),
        (_sample("a photo of a red bus", width=150), "filter:min_side"),
        (_sample("a photo of a red bus", width=2000, height=300), "filter:aspect_ratio"),
    ]
    batch_reasons = [None if d is None else f"filter:{d}" for d in stage.judge_batch([s for s, _ in cases])]
    assert batch_reasons == [r for _, r in cases]
    assert cases[0][0].values["language"] == "en" and cases[2][0].values["language"] == "fr"
    assert set(stage.fields) == {"language", "language_score"}
