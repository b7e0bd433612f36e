"""Block lists: hashes and URLs a training set must not contain (a lower layer, Beam-free).

names    kinds, the reason, the ledger columns
options  --block_list KIND:PATH, the radii; the checked, picklable BlockSettings
lists    a list file (one hash or URL a line, ThreatExchange's `hash,quality,...`) -> sorted rows
index    one list as fixed-width rows on storage: exact lookup by binary search, and an exact
         Hamming-radius search by multi-index hashing (pigeonhole over 16-bit chunks)
build    every list of a run built once, before the run, under <output>/_spill/blocklists/
check    what a worker asks: is this URL, or this image's bytes, on a list?

The download stage (before a request and before its cache write) and the safety stage (right
after shards or images are read) both check through `check.BlockCheck`.
"""
