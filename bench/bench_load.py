"""Benchmark: load N merged result rows (~2 KB each) into PostgreSQL and DuckDB.

Compares, in one run and each in its own process (peak RSS per approach):
  to_sql     pandas DataFrame.to_sql, default method (psycopg 3 executemany), chunksize 10,000
  floor      server-side COPY ... FROM a CSV file already on the server's disk (no client at all)
  batchkit   batchkit's PostgreSQL loader (ADBC binary COPY, streaming from Parquet)
  duckdb     batchkit's DuckDB loader
Targets: batchkit >= 80% of the floor's rows/s, client RSS <= 1.2 GB; DuckDB >= 40k rows/s.

    python bench/bench_load.py [--rows 1000000]
"""

import argparse
import json
import resource
import secrets
import sys
import time
from pathlib import Path

from worker import run_worker

WORK = Path(".bench/load")
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def make_results(rows: int) -> list[Path]:
    """Merged-result-shaped Parquet files of 50,000 rows each (like one file per batch)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    WORK.mkdir(parents=True, exist_ok=True)
    paths, rng = [], np.random.default_rng(1)
    words = np.array(
        [
            "the",
            "delivery",
            "arrived",
            "quickly",
            "product",
            "works",
            "screen",
            "quality",
            "café",
            "naïve",
            "東京",
            "مرحبا",
            "🎉",
        ]
    )
    for start in range(0, rows, 50_000):
        n = min(50_000, rows - start)
        path = WORK / f"result-{start // 50_000:05d}.parquet"
        paths.append(path)
        if path.exists():
            continue
        text = [" ".join(rng.choice(words, 150)) for _ in range(n)]
        pq.write_table(
            pa.table(
                {
                    "review_id": np.arange(start, start + n),
                    "product": [f"SKU-{i % 5000:05d}" for i in range(n)],
                    "stars": rng.integers(1, 6, n).astype("int8"),
                    "text": text,
                    "custom_id": [str(i) for i in range(start, start + n)],
                    "batch_id": ["batch_abc"] * n,
                    "status": ["ok"] * n,
                    "response_text": [f"echo: {t[:200]}" for t in text],
                    "model": ["gpt-4o-mini"] * n,
                    "prompt_tokens": rng.integers(50, 500, n),
                    "completion_tokens": rng.integers(5, 60, n),
                    "total_tokens": rng.integers(60, 560, n),
                    "error_code": pa.nulls(n, pa.string()),
                    "error_message": pa.nulls(n, pa.string()),
                    "attempts": np.ones(n, dtype="int32"),
                }
            ),
            path,
        )
    return paths


def worker(kind: str, database: str, paths: list[str]) -> dict:
    import psycopg

    from batchkit.warehouse.duckdb_loader import load_duckdb
    from batchkit.warehouse.postgres_loader import load_postgres

    started = time.perf_counter()
    if kind == "batchkit":
        rows = load_postgres(database, "bench_batchkit", paths, "p", "bench")
    elif kind == "duckdb":
        rows = load_duckdb(WORK / f"bench-{secrets.token_hex(3)}.duckdb", "bench", paths, "p", "bench")
    elif kind == "to_sql":
        import pyarrow.parquet as pq
        import sqlalchemy

        engine = sqlalchemy.create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
        rows = 0
        for path in paths:  # one file at a time, as a careful pandas user would
            frame = pq.read_table(path).to_pandas()
            frame.to_sql("bench_to_sql", engine, if_exists="append", index=False, chunksize=10_000)
            rows += len(frame)
    else:  # floor: the server reads a CSV it already has; the client only sends the statement
        csv = Path("/tmp") / f"batchkit-bench-{secrets.token_hex(3)}.csv"
        _write_csv(paths, csv)
        with psycopg.connect(database, autocommit=True) as con:
            _floor_table(con, paths)
            started = time.perf_counter()
            rows = con.execute(f"COPY bench_floor FROM '{csv}' WITH (FORMAT csv, HEADER true)").rowcount
        csv.unlink()
    seconds = time.perf_counter() - started
    return {
        "kind": kind,
        "rows": rows,
        "seconds": seconds,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _write_csv(paths: list[str], target: Path) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with pacsv.CSVWriter(target, pq.read_schema(paths[0])) as writer:
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches():
                writer.write_batch(batch)
    target.chmod(0o644)


def _floor_table(con, paths: list[str]) -> None:
    import pyarrow.parquet as pq

    from batchkit.warehouse import quote_column
    from batchkit.warehouse.postgres_loader import postgres_type

    schema = pq.read_schema(paths[0])
    con.execute(
        f"CREATE TABLE bench_floor ({', '.join(f'{quote_column(f.name)} {postgres_type(f.type)}' for f in schema)})"
    )


def run(kind: str, database: str, paths: list[Path], rows: int) -> dict:
    stats = run_worker(__file__, kind, database, *map(str, paths))
    stats["rows_s"] = stats["rows"] / stats["seconds"]
    print(
        f"  {kind:9s} {stats['rows']:>10,} rows {stats['seconds']:7.1f}s {stats['rows_s']:>9,.0f} rows/s  "
        f"client peak RSS {stats['rss_mb']:6.0f} MB",
        flush=True,
    )
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, database, *paths = args.worker
        print(json.dumps(worker(kind, database, paths)))
        return 0
    import psycopg

    paths = make_results(args.rows)
    name = f"batchkit_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    database = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        print(f"load benchmark: {args.rows:,} merged rows in {len(paths)} Parquet files")
        ours = run("batchkit", database, paths, args.rows)
        floor = run("floor", database, paths, args.rows)
        to_sql = run("to_sql", database, paths, args.rows)
        duck = run("duckdb", database, paths, args.rows)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    vs_floor, vs_to_sql = ours["rows_s"] / floor["rows_s"], ours["rows_s"] / to_sql["rows_s"]
    checks = [
        (f"batchkit / server-side COPY floor: {vs_floor:.0%} (target >= 80%)", vs_floor >= 0.8),
        (f"batchkit / to_sql: {vs_to_sql:.2f}x", True),
        (f"batchkit client peak RSS: {ours['rss_mb']:.0f} MB (target <= 1,200 MB)", ours["rss_mb"] <= 1200),
        (f"DuckDB: {duck['rows_s']:,.0f} rows/s (target >= 40,000)", duck["rows_s"] >= 40_000),
    ]
    for text, ok in checks:
        print(f"{text}{'' if text.endswith('x') else ': ' + ('OK' if ok else 'MISSED')}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
