"""The kinds of block list, the reason a match is dropped with, and the ledger columns."""
from __future__ import annotations

import pyarrow as pa

IMAGE_KINDS = ("pdq", "phash", "md5", "sha1", "sha256")  # of the image (bytes or pixels)
URL_KINDS = ("url", "url_md5")  # of the URL string as given (a `url` list is stored as MD5s)
KINDS = IMAGE_KINDS + URL_KINDS
NEAR_KINDS = ("pdq", "phash")  # matched within a Hamming radius
# bytes per stored entry
WIDTH = {"pdq": 32, "phash": 8, "md5": 16, "sha1": 20, "sha256": 32, "url": 16, "url_md5": 16}

REASON = "safety:blocked"
BLOCK_LIST, BLOCK_DISTANCE = "block_list", "block_distance"
PDQ, PDQ_QUALITY = "pdq", "pdq_quality"
FIELDS: dict[str, pa.DataType] = {
    BLOCK_LIST: pa.string(),  # the name of the list that matched (its file name)
    BLOCK_DISTANCE: pa.int32(),  # Hamming bits for pdq / phash, 0 for exact kinds
    PDQ: pa.string(),  # 64 hex characters, when a pdq list is checked
    PDQ_QUALITY: pa.int32(),
}
