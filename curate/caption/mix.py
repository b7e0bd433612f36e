"""Which text `<uid>.txt` holds: MetaCLIP v1.2 swaps the alt-text for the synthetic caption with a
fixed probability; here the choice is a keyed hash of (uid, seed), the same on any runner."""
from __future__ import annotations

import hashlib


def mix_uniform(uid: str, seed: int) -> float:
    """A fixed number in [0, 1) per (uid, seed)."""
    digest = hashlib.blake2b(f"caption-mix\x00{seed}\x00{uid}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def txt_is_synthetic(uid: str, seed: int, mix: float) -> bool:
    return mix > 0 and mix_uniform(uid, seed) < mix
