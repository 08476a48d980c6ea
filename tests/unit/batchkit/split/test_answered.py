"""The ledger's answers as sorted digests: each request's kind, and the memory a large rerun needs."""

import pyarrow as pa

from batchkit.split.answered import Answered


def results(custom_ids: list[str], fingerprints: list[str], final: list[bool]) -> pa.Table:
    return pa.table({"custom_id": custom_ids, "fingerprint": fingerprints, "final": final})


def test_each_request_is_reused_changed_retried_or_new():
    answered = Answered.of(
        [results(["a", "b", "c"], ["fa", "fb", "fc"], [True, True, False]), results(["a"], ["fa"], [True])]
    )
    assert answered and len(answered) == 2  # a and b, each once
    kinds = answered.kinds(["a", "b", "c", "d", "a"], ["fa", "fb-new", "fc", "fd", "fa"])
    assert kinds.tolist() == ["reused", "changed", "retried", "new", "reused"]
    assert not Answered.nothing() and Answered.nothing().kinds(["a"], ["fa"]).tolist() == ["new"]


def test_answers_hold_32_bytes_each():
    ids = [f"{i:07d}" for i in range(100_000)]
    answered = Answered.of([results(ids, [f"{i:064x}" for i in range(100_000)], [True] * len(ids))])
    assert sum(a.nbytes for a in (answered.final, answered.final_ids, answered.seen)) == 3_200_000
    kinds = answered.kinds([*ids[:3], "x"], [*(f"{i:064x}" for i in range(3)), "f"])
    assert kinds.tolist() == ["reused", "reused", "reused", "new"]
