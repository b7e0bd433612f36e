"""Downloading URL-only samples inside the Beam graph: polite, bounded, resumable.

options   flags and the validated, picklable DownloadSettings
address   only http/https, and never private/loopback/link-local/... addresses
robots    robots.txt (fetched once per host) and X-Robots-Tag opt-outs
tdmrep    TDMRep reservations: /.well-known/tdmrep.json (once per host) and the response header
origin_cache  a file fetched once per origin and shared by its URLs (robots.txt, tdmrep.json)
failures  one classifier from an exception to a reason, transient or not
backoff   exponential backoff with deterministic jitter, Retry-After
fetch     one URL: redirects, deadline, byte cap, content sniffing, retries; block lists
          (curate.blocklist) checked before each request and before an image becomes an outcome
decode    verify, guard and optionally resize the bytes (img2dataset's Resizer)
cache     per-batch result files under the output: what a rerun keeps
client    one event loop, HTTP session and limits per worker process
stage     the Beam transform: per batch, concurrent, a ledger row for every URL
"""
