"""What the ledger already answered, for the split to leave out: sorted digests, not sets of strings.

A request is answered for good when the ledger holds a final result for its custom_id *and* fingerprint; its
16-byte digest of both decides (as the fingerprint, a hash, already stands for the request body). Custom ids
alone only sort what is sent into changed, retried and new for the counts, so 8 bytes do. A rerun of a
5,000,000-request partition holds 160 MB of digests, where Python sets of the strings held about 2 GB.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import blake2b

import numpy as np
import pyarrow as pa

KEY = np.dtype("S16")  # digest of "<custom_id>\x00<fingerprint>"
ID = np.dtype(np.uint64)  # digest of a custom_id


def key_digests(custom_ids: Iterable[str], fingerprints: Iterable[str]) -> np.ndarray:
    return np.array(
        [blake2b(f"{c}\x00{f}".encode(), digest_size=16).digest() for c, f in zip(custom_ids, fingerprints)], KEY
    )


def id_digests(custom_ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((int.from_bytes(blake2b(c.encode(), digest_size=8).digest(), "little") for c in custom_ids), ID)


def _members(known: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """Which of ``asked`` are in the sorted array ``known``."""
    if not len(known):
        return np.zeros(len(asked), bool)
    at = np.minimum(np.searchsorted(known, asked), len(known) - 1)
    return known[at] == asked


@dataclass(frozen=True)
class Answered:
    final: np.ndarray  # sorted KEY digests of requests answered for good
    final_ids: np.ndarray  # sorted ID digests of custom_ids answered for some fingerprint
    seen: np.ndarray  # sorted ID digests of custom_ids with any result

    @classmethod
    def nothing(cls) -> "Answered":
        return cls(np.array([], KEY), np.array([], ID), np.array([], ID))

    @classmethod
    def of(cls, results: Iterable[pa.Table]) -> "Answered":
        """From ledger result tables (``custom_id``, ``fingerprint``, ``final``), read one at a time."""
        final, final_ids, seen = [np.array([], KEY)], [np.array([], ID)], [np.array([], ID)]
        for table in results:
            answered = table.filter(table.column("final"))
            ids = answered.column("custom_id").to_pylist()
            final.append(key_digests(ids, answered.column("fingerprint").to_pylist()))
            final_ids.append(id_digests(ids))
            seen.append(id_digests(table.column("custom_id").to_pylist()))
        return cls(*(np.unique(np.concatenate(parts)) for parts in (final, final_ids, seen)))

    def __bool__(self) -> bool:
        return bool(len(self.seen))  # every answered custom_id was seen

    def __len__(self) -> int:
        """How many requests are answered for good."""
        return len(self.final)

    def kinds(self, custom_ids: list[str], fingerprints: list[str]) -> np.ndarray:
        """Each request's kind: ``reused`` (answered for good: leave it out), else ``changed`` (answered for
        another fingerprint), ``retried`` (results, none final) or ``new``."""
        reused = _members(self.final, key_digests(custom_ids, fingerprints))
        ids = id_digests(custom_ids)
        changed, retried = _members(self.final_ids, ids), _members(self.seen, ids)
        return np.select([reused, changed, retried], ["reused", "changed", "retried"], "new")
