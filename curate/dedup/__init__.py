"""Dedup: exact (URL, sha256), perceptual-hash near duplicates, SemDeDup, eval decontamination."""
