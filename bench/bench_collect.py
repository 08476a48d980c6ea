"""Benchmark: record one 50,000-line Batch output file in the ledger (results -> Parquet), chat and embeddings.

Compares, in one run and each in its own process (peak RSS per approach; pyarrow.compute's one-time pandas
import is done before timing):
  per_row   the approach before the ledger: one Python ``Result`` per line for the whole file, then columns
  chunks    the collect of 2026-12-06 (embeddings only): orjson per line in chunks of 1,024 Python results, each
            chunk's vectors then converted through numpy, the ledger written with dictionaries on every column
  collect   what collect does now: Arrow's JSON reader in 16 MB blocks (chat), or orjson per line with each vector
            copied into a float32 buffer as it is parsed, the second half of the file in a child process
            (embeddings, whose floats orjson parses faster than Arrow)
  duckdb    DuckDB ``read_json`` with an explicit STRUCT column list straight to Parquet (reference)
Peak RSS is the worker's and, apart, its child's (collect's second half).
Targets: collect >= 5x faster than per_row; on the embeddings file collect >= 2x faster than chunks and each
process's peak RSS <= 600 MB.

    python bench/bench_collect.py [--lines 50000] [--dimensions 1536]
"""

import argparse
import itertools
import json
import resource
import sys
import time
from pathlib import Path

import orjson
from worker import run_worker

WORK = Path(".bench/collect")


def make_output(kind: str, lines: int, dimensions: int) -> Path:
    """A Batch API output file: chat completions with ~1 KB answers, or embeddings of ``dimensions`` floats."""
    import numpy as np

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{kind}-{lines}-{dimensions}.jsonl"
    if path.exists():
        return path
    rng = np.random.default_rng(3)
    words = ["the", "delivery", "arrived", "quickly", "café", "naïve", "東京", "works", "screen", "🎉"]
    with path.open("wb") as out:
        for i in range(lines):
            if kind == "chat":
                answer = " ".join(rng.choice(words, 180))
                body = {
                    "object": "chat.completion",
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 120, "completion_tokens": 250, "total_tokens": 370},
                }
            else:
                vector = rng.standard_normal(dimensions).astype("float32").tolist()
                body = {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                    "model": "text-embedding-3-small",
                    "usage": {"prompt_tokens": 40, "total_tokens": 40},
                }
            line = {
                "id": f"req_{i}",
                "custom_id": str(i),
                "response": {"status_code": 200, "body": body},
                "error": None,
            }
            out.write(orjson.dumps(line) + b"\n")
    return path


def worker(approach: str, path: str, lines: int) -> dict:
    import pandas  # noqa: F401  (pyarrow.compute imports it on first use: a one-time cost, not per file)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batchkit.results.result_line import parse_line
    from batchkit.results.result_lines import parse_lines, results_batch
    from batchkit.results.result_schema import RESULT_SCHEMA
    from batchkit.results.results import result_batches, write_results

    out = WORK / f"out-{approach}-{Path(path).stem}.parquet"
    prints = {str(i): "f" for i in range(lines)}
    started = time.perf_counter()
    if approach == "duckdb":
        import duckdb

        usage = "STRUCT(prompt_tokens BIGINT, completion_tokens BIGINT, total_tokens BIGINT)"
        body = (
            "STRUCT(object VARCHAR, model VARCHAR, choices STRUCT(message STRUCT(content VARCHAR))[], "
            f"data STRUCT(embedding FLOAT[])[], usage {usage})"
        )
        columns = f"{{custom_id: 'VARCHAR', response: 'STRUCT(status_code INTEGER, body {body})'}}"
        with duckdb.connect(config={"memory_limit": "3GB", "threads": 2}) as con:
            con.execute(
                f"COPY (SELECT custom_id, response.status_code AS http_status, response.body.choices[1].message.content "
                f"AS response_text, response.body.data[1].embedding AS embedding, response.body.model AS model "
                f"FROM read_json('{path}', columns = {columns}, format = 'newline_delimited')) TO '{out}' (FORMAT parquet)"
            )
            rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
    elif approach == "chunks":
        import numpy as np

        from batchkit.results import results

        results._DICTIONARY = True  # as the ledger was written then: pyarrow's default, every column

        def chunked(per_line: bool):
            results = parse_lines(Path(path), "b")
            while chunk := list(itertools.islice(results, 1024)):
                vectors = np.concatenate([np.asarray(r.embedding, np.float32) for r in chunk])
                offsets = pa.array(np.arange(0, len(vectors) + 1, len(chunk[0].embedding), dtype=np.int32))
                for r in chunk:
                    r.embedding = None
                yield results_batch(chunk, pa.ListArray.from_arrays(offsets, pa.array(vectors)))

        rows = write_results(chunked, prints, 1, out)
    elif approach == "per_row":
        with open(path, "rb") as lines:  # as then: the default 8 KB read buffer
            results = [parse_line(orjson.loads(raw), "b") for raw in lines if raw.strip()]
        columns = [pa.array([getattr(r, f.name) for r in results], f.type) for f in RESULT_SCHEMA]
        pq.write_table(pa.table(columns, schema=RESULT_SCHEMA), out)
        rows = len(results)
    else:
        rows = write_results(lambda per_line: result_batches([Path(path)], "b", per_line), prints, 1, out)
    seconds = time.perf_counter() - started
    peak = {who: resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)}
    return {
        "rows": rows,
        "seconds": seconds,
        "rss_mb": peak[resource.RUSAGE_SELF],
        "child_mb": peak[resource.RUSAGE_CHILDREN],
    }


def run(approach: str, path: Path, lines: int) -> dict:
    stats = run_worker(__file__, approach, str(path), str(lines))
    print(
        f"  {approach:8s} {stats['rows']:>7,} lines {stats['seconds']:7.2f}s "
        f"{stats['rows'] / stats['seconds']:>9,.0f} lines/s  peak RSS {stats['rss_mb']:6.0f} MB"
        + (f" (child {stats['child_mb']:.0f} MB)" if approach == "collect" and stats["child_mb"] else ""),
        flush=True,
    )
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--dimensions", type=int, default=1536)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        approach, path, lines = args.worker
        print(json.dumps(worker(approach, path, int(lines))))
        return 0
    checks = []
    for kind in ("chat", "embeddings"):
        path = make_output(kind, args.lines, args.dimensions)
        print(f"{kind}: {args.lines:,} output lines, {path.stat().st_size / 1e6:,.0f} MB ({path})")
        approaches = (
            ("per_row", "chunks", "collect", "duckdb") if kind == "embeddings" else ("per_row", "collect", "duckdb")
        )
        figures = {approach: run(approach, path, args.lines) for approach in approaches}
        speedup = figures["per_row"]["seconds"] / figures["collect"]["seconds"]
        checks.append((f"{kind}: collect is {speedup:.1f}x faster than per_row (target >= 5x)", speedup >= 5))
        if kind == "embeddings":
            speedup = figures["chunks"]["seconds"] / figures["collect"]["seconds"]
            checks.append((f"{kind}: collect is {speedup:.1f}x faster than chunks (target >= 2x)", speedup >= 2))
            rss = max(figures["collect"]["rss_mb"], figures["collect"]["child_mb"])
        else:
            rss = figures["collect"]["rss_mb"]
        checks.append((f"{kind}: collect peak RSS {rss:.0f} MB per process (target <= 600 MB)", rss <= 600))
    for text, ok in checks:
        print(f"{text}: {'OK' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
