"""Per-language metadata lists (MetaCLIP 2): one `<lang>.json` per language in a folder.

    python -m metadata.build --languages en,de,fr,es,zh,ja --out_dir metadata/languages

Sources per language, merged in this order: MetaCLIP 2's released lists, wordfreq's most
frequent words, word-list files and titles files (metadata/README.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator

from metadata.entries import format_summary, is_word, merge_sources, read_titles, write_list


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The builder's per-language flags (`--languages` switches it to this mode)."""
    lang = parser.add_argument_group("per-language lists (MetaCLIP 2)")
    lang.add_argument("--languages", default=None,
                      help="comma-separated language codes: build one <lang>.json per language "
                           "into --out_dir instead of --out ('all' with --metaclip2_dir: every "
                           "language there); --wordfreq_top then counts per language")
    lang.add_argument("--out_dir", default="metadata/languages",
                      help="folder for the per-language lists (default: %(default)s)")
    lang.add_argument("--metaclip2_dir", default=None,
                      help="folder of MetaCLIP 2's released per-language lists (<wiki code>.json, "
                           "a list or an {entry: source} object); variants such as zh_yue.json "
                           "merge into their base language")
    lang.add_argument("--word_list", action="append", default=[], metavar="LANG=FILE",
                      help="a word-list file for one language (.json list, or `word` / "
                           "`word<TAB>count` lines); repeatable")
    lang.add_argument("--word_list_top", type=int, default=None,
                      help="keep only the first N words of each --word_list (by count when given)")
    lang.add_argument("--language_titles", action="append", default=[], metavar="LANG=FILE",
                      help="a titles file for one language (as --titles); repeatable")


def wordfreq_language_words(language: str, n: int) -> list[str]:
    """wordfreq's n most frequent words of a language that contain a letter ([] if it lacks one)."""
    try:
        import wordfreq
    except ImportError as e:
        raise ImportError("--languages with --wordfreq_top needs `pip install wordfreq`") from e
    if language not in wordfreq.available_languages():
        return []
    return [w for w in wordfreq.top_n_list(language, n) if is_word(w)]


def read_word_list(path: str | Path, top: int | None = None) -> list[str]:
    """Strings of a word-list file: a JSON list, a JSON object (its keys: MetaCLIP 2's released
    `{entry: source}` form), or text lines of `word` or `word<TAB>count` (ranked by count)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        with open(path, encoding="utf-8") as f:
            loaded = json.load(f)
        words = list(loaded) if isinstance(loaded, (list, dict)) else []
        return [w for w in words if isinstance(w, str)][:top]
    rows: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            word, _, count = line.partition("\t")
            rows.append((word, int(count) if count.strip().isdigit() else 0))
    if any(c for _, c in rows):
        rows.sort(key=lambda x: -x[1])
    return [w for w, _ in rows[:top]]


def metaclip2_files(folder: str | Path, language: str) -> list[Path]:
    """MetaCLIP 2's released lists for one language: `<lang>.json` and its variants
    `<lang>_*.json` (zh_yue, zh_classical, ...), merged into the base code as its
    `align_lid_to_wiki.py` does; base first, then variants by name, for a fixed order."""
    folder = Path(folder)
    base = [folder / f"{language}.json"] if (folder / f"{language}.json").is_file() else []
    return base + sorted(folder.glob(f"{language}_*.json"))


def parse_language_files(specs: list[str]) -> dict[str, list[str]]:
    """`LANG=FILE` flags -> {lang: [files]}."""
    found: dict[str, list[str]] = {}
    for spec in specs:
        language, sep, path = spec.partition("=")
        if not sep or not language or not path:
            raise SystemExit(f"error: {spec!r} is not LANG=FILE")
        found.setdefault(language, []).append(path)
    return found


def collect_language_sources(args: argparse.Namespace, language: str) -> Iterator[tuple[str, Iterable[str]]]:
    """(name, strings) per source of one language, in merge order: MetaCLIP 2's released
    list, wordfreq, word-list files, titles files."""
    if args.metaclip2_dir:
        for path in metaclip2_files(args.metaclip2_dir, language):
            yield f"metaclip2:{path.stem}", read_word_list(path)
    if args.wordfreq_top:
        yield "wordfreq", wordfreq_language_words(language, args.wordfreq_top)
    for path in parse_language_files(args.word_list).get(language, []):
        yield f"words:{Path(path).name}", read_word_list(path, args.word_list_top)
    for path in parse_language_files(args.language_titles).get(language, []):
        yield f"titles:{Path(path).name}", read_titles(path, args.titles_top)


def build_languages(args: argparse.Namespace) -> None:
    """One `<lang>.json` per language in --out_dir; a language with no entries is left out."""
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    if args.metaclip2_dir and languages == ["all"]:
        languages = sorted({p.stem.split("_")[0] for p in Path(args.metaclip2_dir).glob("*.json")})
    for language in languages:
        entries, stats = merge_sources(collect_language_sources(args, language))
        if not entries:
            print(f"{language}: no entries from any source, skipped", file=sys.stderr)
            continue
        out = Path(args.out_dir) / f"{language}.json"
        write_list(entries, out)
        print(f"== {language}\n{format_summary(entries, stats)}")
        print(f"wrote {len(entries)} entries to {out}", file=sys.stderr)
