"""Benchmark inputs: real-looking captions and a MetaCLIP-sized metadata list, deterministic.

Captions come from a word-bigram Markov chain trained on the bundled real captions (COCO
captions and LAION alt-texts) and, when given, more real caption files; the metadata list is
the shipped default topped up to the requested size with the chain's frequent bigrams and
trigrams (multi-word entries, like MetaCLIP's Wikipedia titles).
"""
from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict

from curate.inputs import bundled_sample
from curate.metaclip.metadata import load_metadata


def real_captions(extra_files: list[str] = ()) -> list[str]:
    with open(os.path.join(bundled_sample(), "pairs.jsonl"), encoding="utf-8") as f:
        captions = [json.loads(line)["caption"] for line in f]
    for path in extra_files:
        with open(path, encoding="utf-8", errors="replace") as f:
            captions.extend(line.split("\t")[0].strip() for line in f if line.strip())
    return captions


def markov_captions(n: int, seed: int = 0, extra_files: list[str] = (), source: list[str] | None = None) -> list[str]:
    """`source`: the captions to train the chain on (default: the bundled sample's, + extra_files)."""
    chain: dict[str, list[str]] = defaultdict(list)
    for caption in (real_captions(extra_files) if source is None else source):
        words = ["<s>", *caption.split(), "</s>"]
        for a, b in zip(words, words[1:]):
            chain[a].append(b)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        word, words = "<s>", []
        while len(words) < 40:
            word = rng.choice(chain[word])
            if word == "</s>":
                break
            words.append(word)
        out.append(" ".join(words))
    return out


def metadata_of_size(size: int, captions: list[str]) -> list[str]:
    entries = list(load_metadata())
    seen = set(entries)
    grams: Counter = Counter()
    for caption in captions[:200_000]:
        words = caption.replace(",", " ").replace(".", " ").split()
        grams.update(" ".join(words[i:i + n]) for n in (2, 3) for i in range(len(words) - n + 1))
    for gram, _ in grams.most_common():
        if len(entries) >= size:
            break
        if gram not in seen:
            seen.add(gram)
            entries.append(gram)
    # the long tail, like Wikipedia titles: random 2-4 word names, most of which never match
    vocab = sorted({w for caption in captions[:20_000] for w in caption.split()})
    rng = random.Random(size)
    while len(entries) < size:
        name = " ".join(rng.choice(vocab).capitalize() for _ in range(rng.randint(2, 4)))
        if name not in seen:
            seen.add(name)
            entries.append(name)
    return entries
