"""Batch output and error files -> one result row per request, streamed into the ledger's Parquet files.

A result is ``ok`` when the request returned HTTP 200, else ``error`` with the API's code and message; with an output
schema, a 200 answer that does not follow it is ``invalid_output`` (see ``batchkit.structured``).
Chat answers are read in blocks by Arrow's JSON reader (``batchkit.results.arrow_results``: C++, no per-row Python
objects); embeddings, the responses endpoint's output list and unusual error shapes line by line, on two cores
for large files (``batchkit.results.result_lines``). Either way memory stays bounded whatever the file size.
"""

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..batch_api import RETRYABLE_HTTP_STATUS, UNANSWERED_CODES
from ..errors import ResultsIncomplete, ResultsUnreadable
from ..structured import INVALID, AnswerCheck
from .answers import ResultStatus
from .arrow_results import NeedsPerLine, arrow_batches
from .result_line import Result
from .result_lines import line_batches, results_batch
from .result_schema import CACHE_SCHEMA, LEDGER_SCHEMA, RESULT_SCHEMA

_DICTIONARY = [f.name for f in LEDGER_SCHEMA if f.name != "embedding"]  # floats: dictionaries only cost time


def write_results(
    source: Callable[[bool], Iterable[pa.RecordBatch]],
    fingerprints: dict[str, str],
    attempt: int,
    out: Path,
    expected: int | None = None,
    check: AnswerCheck | None = None,
) -> int:
    """Stream one batch's results into a ledger Parquet file at ``out``, in bounded memory.

    :param source: ``source(per_line)`` yields the results as ``PARSED_SCHEMA`` record batches
        (``result_batches``); called again with ``per_line=True`` when Arrow's reader cannot type a file.
    :param fingerprints: the batch's requests (``batch_inputs.fingerprints``); a result for another custom_id is refused.
    :param check: the output schema's check (structured outputs): answers failing it become ``invalid_output``.
    :param expected: the batch's request count; fewer or more results than that are refused (nothing may go
        missing silently).
    :returns: the number of results written.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        written = _write(source(False), fingerprints, attempt, out, check)
    except NeedsPerLine:
        written = _write(source(True), fingerprints, attempt, out, check)
    if expected is not None and written != expected:
        raise ResultsIncomplete(f"the batch reports {expected} requests but its files hold {written} results")
    return written


def _write(
    batches: Iterable[pa.RecordBatch], fingerprints: dict[str, str], attempt: int, out: Path, check: AnswerCheck | None
) -> int:
    recorded_at, written = time.time(), 0
    with pq.ParquetWriter(out, LEDGER_SCHEMA, use_dictionary=_DICTIONARY) as writer:
        for batch in batches:
            ids = batch.column("custom_id").to_pylist()
            prints = [fingerprints.get(custom_id) for custom_id in ids]
            if None in prints:
                unknown = ids[prints.index(None)]
                raise ResultsUnreadable(f"results name custom_id {unknown!r}, which is not among the batch's requests")
            columns = {name: batch.column(name) for name in RESULT_SCHEMA.names}
            columns |= {  # RESULT_SCHEMA batches (no cache counts) do too
                f.name: batch.column(f.name) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type)
                for f in CACHE_SCHEMA
            }
            if check is not None:
                columns.update(_checked(columns, check))
            # final: ok, or an error sending the same body again would repeat (see batchkit.ledger)
            ok = pc.equal(columns["status"], ResultStatus.OK.value)
            retry_later = pc.or_(
                pc.is_in(columns["http_status"], pa.array(sorted(RETRYABLE_HTTP_STATUS), pa.int32())),
                pc.is_in(columns["error_code"], pa.array(sorted(UNANSWERED_CODES))),
            )
            n = batch.num_rows
            columns |= {
                "attempts": pa.array([attempt] * n, pa.int32()),
                "fingerprint": pa.array(prints, pa.string()),
                "final": pc.or_(ok, pc.invert(pc.fill_null(retry_later, False))),
                "recorded_at": pa.array([recorded_at] * n, pa.float64()),
            }
            writer.write_batch(pa.record_batch([columns[f.name] for f in LEDGER_SCHEMA], LEDGER_SCHEMA))
            written += n
    return written


def _checked(columns: dict[str, pa.Array], check: AnswerCheck) -> dict[str, pa.Array]:
    """Mark 200 answers that do not follow the output schema ``invalid_output``, with why (the text is kept)."""
    status, code, message = (columns[n].to_pylist() for n in ("status", "error_code", "error_message"))
    texts, reasons, refusals = (columns[n].to_pylist() for n in ("response_text", "finish_reason", "refusal"))
    for i, state in enumerate(status):
        if state == ResultStatus.OK and (problem := check.problem(texts[i], reasons[i], refusals[i])):
            status[i], (code[i], message[i]) = INVALID, problem
    return {
        "status": pa.array(status, pa.string()),
        "error_code": pa.array(code, pa.string()),
        "error_message": pa.array(message, pa.string()),
    }


def result_batches(paths: list[Path], batch_id: str, per_line: bool = False) -> Iterator[pa.RecordBatch]:
    """The results in ``paths`` (output and error files of one batch) as ``PARSED_SCHEMA`` record batches."""
    for path in paths:
        yield from (line_batches if per_line else arrow_batches)(path, batch_id)


def from_results(results: list[Result]) -> Callable[[bool], list[pa.RecordBatch]]:
    """A ``write_results`` source for results already in memory (e.g. synthesised for a refused batch)."""
    return lambda per_line: [results_batch(results)] if results else []
