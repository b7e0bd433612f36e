"""Image hashes computed from encoded bytes, without Beam or models (a lower layer).

phash  64-bit pHash (dedup's near-duplicate key, and `phash` block lists)
pdq    Meta's 256-bit PDQ with its quality score (hash-sharing lists: ThreatExchange, NCMEC)
"""
