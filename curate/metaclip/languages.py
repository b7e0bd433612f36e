"""Caption language for MetaCLIP 2: fastText lid.176 (the basic filter's detector), then the
metadata language it is matched in.

lid.176 speaks ISO 639 codes ("yue", "wuu"); MetaCLIP 2's lists are named by Wikipedia codes
and merge variants into their base ("zh_yue", "zh_classical" -> "zh"). `ALIASES` bridges
the two: a code without its own `<code>.json` in the metadata folder follows its alias, and
the alias's alias, until a language with metadata is found or the chain ends (then the
caption is dropped as `metaclip:no_language_metadata`). `--language_map a=b,c=d` adds or
replaces aliases; `a=` removes one.
"""
from __future__ import annotations

from curate.errors import UsageError
from curate.filters.language import detect

# lid.176 label or Wikipedia variant -> the language whose metadata it uses
ALIASES = {
    "yue": "zh_yue", "zh_yue": "zh",           # Cantonese
    "wuu": "zh", "zh_classical": "zh", "lzh": "zh",  # Wu, Classical Chinese
    "zh_min_nan": "zh", "nan": "zh", "gan": "zh", "hak": "zh",
    "nb": "no",                                # Norwegian Bokmal
    "be_x_old": "be", "be_tarask": "be",       # Belarusian (Taraskievica)
    "simple": "en",                            # Simple English Wikipedia
}
UNKNOWN = "und"  # no language found (empty caption)


def parse_language_map(spec: str | None) -> dict[str, str]:
    """ALIASES with `a=b,c=d` applied; UsageError on a malformed pair."""
    table = dict(ALIASES)
    for pair in (spec or "").split(","):
        if not pair.strip():
            continue
        code, sep, target = pair.partition("=")
        if not sep or not code.strip():
            raise UsageError(f"--language_map: {pair!r} is not CODE=LANGUAGE")
        if target.strip():
            table[code.strip()] = target.strip()
        else:
            table.pop(code.strip(), None)
    return table


def metadata_language(code: str, available, table: dict[str, str]) -> str | None:
    """The language with metadata that a detected code is matched in, or None."""
    seen = set()
    while code and code not in available:
        if code in seen or code not in table:
            return None
        seen.add(code)
        code = table[code]
    return code or None


def detect_language(caption: str) -> tuple[str, float]:
    """lid.176's top (code, score); UNKNOWN for a caption with nothing to classify."""
    if not caption or not caption.strip():
        return UNKNOWN, 0.0
    code, score = detect(caption)
    return code or UNKNOWN, score
