"""Create each batch once across tries, clears and overlapping runs: claim its key in the ledger first."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from batchkit.errors import ClaimHeld
from openai_batch.vendors.base import LookupPending

if TYPE_CHECKING:
    from openai.types import Batch

    from batchkit.ledger import Claim, Ledger
    from openai_batch.vendors.base import BatchVendor

CLAIM_WAIT_SECONDS = 60.0  # how long a second run waits on the worker for the first run's create
STALE_CLAIM_SECONDS = 900.0  # a claim this old without a batch: its creator is gone, take it over


def submit_once(
    vendor: BatchVendor,
    ledger: Ledger,
    key: str,
    owner: str,
    file_sha256: str,
    path: str,
    log: Any,
    requests: int,
    **create: Any,
) -> tuple[Batch, Claim]:
    """The batch of ``key`` and its claim: adopted (any status) when a claim names one or the vendor holds one
    created under the key (``vendor.find_batch``), else sent from ``path`` (``requests`` lines) and created under a
    claim this caller won.

    :raises ClaimHeld: another run is creating this batch right now (the task retries later).
    """
    claim = ledger.claim(key, owner, file_sha256)
    if claim is None:
        return _create(vendor, ledger, ledger.claim_of(key), path, requests, **create)
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while True:
        if claim.batch_id:
            from openai_batch.retention import batch_or_recorded

            log.info("adopting batch %s of key %s (created by %s)", claim.batch_id, key, claim.owner)
            return batch_or_recorded(vendor, ledger, claim.batch_id, path), claim
        others, unsure = Others(ledger, key), None
        try:
            found = vendor.find_batch(
                key, claim.claimed_at, requests=requests, owned=others.owned, pending=others.pending
            )
        except LookupPending as exc:  # a batch may be its lost create's, but cannot be told apart yet
            found, unsure = None, exc
        if found:
            log.info("adopting batch %s of key %s, created by %s before it could record it", found.id, key, claim.owner)
            ledger.record_batch(claim, found.id)
            return found, claim
        # its lost batch may look like theirs (or be among several): wait, never create it again meanwhile
        guessing = unsure is not None or (not vendor.limits.metadata and others.pending())
        if not guessing and (claim.owner == owner or time.time() - claim.claimed_at > STALE_CLAIM_SECONDS):
            log.warning("taking over the claim of key %s from %s (no batch was created)", key, claim.owner)
            ledger.take_over(claim, owner)
            return _create(vendor, ledger, claim, path, requests, **create)
        if time.monotonic() > deadline:
            if unsure is not None:
                raise unsure
            raise ClaimHeld(
                f"{claim.owner} is creating the batch of this file (key {key}) and has not finished after "
                f"{CLAIM_WAIT_SECONDS:.0f}s; this task adopts it on its next try"
            )
        time.sleep(2)
        claim = ledger.claim_of(key) or claim


def _create(
    vendor: BatchVendor, ledger: Ledger, claim: Claim, path: str, requests: int, **create: Any
) -> tuple[Batch, Claim]:
    others = Others(ledger, claim.key)
    batch = vendor.submit(claim.key, path, requests=requests, owned=others.owned, pending=others.pending, **create)
    ledger.record_batch(claim, batch.id)
    return batch, claim


class Others:
    """The ledger's other claims (vendors without metadata ask; OpenAI's never do): read afresh by each lookup's
    ``owned``, which ``pending`` then answers from (one consistent read per lookup; a lookup asked again sees the
    claims recorded meanwhile)."""

    def __init__(self, ledger: Ledger, key: str) -> None:
        self.ledger, self.key, self._claims = ledger, key, None

    def _read(self) -> list[Claim]:
        self._claims = self.ledger.other_claims(self.key)
        return self._claims

    def owned(self) -> set[str]:
        """The batch ids the other claims name."""
        return {c.batch_id for c in self._read() if c.batch_id}

    def pending(self) -> bool:
        """Whether another claim is creating its batch right now (claimed, no batch yet, not stale)."""
        now, claims = time.time(), self._claims if self._claims is not None else self._read()
        return any(not c.batch_id and now - c.claimed_at <= STALE_CLAIM_SECONDS for c in claims)
