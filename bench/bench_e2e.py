"""Scale benchmark: partitions of 200,000 and 1,000,000 rows (batch files of 50,000 requests) end to end through
real Airflow components (scheduler, triggerer, LocalExecutor) and the emulator (echo backend), in one run.

For each partition it prints the wall time of each stage (the longest task instance), the emulator's processing
span (first batch in progress -> last batch completed), the Airflow overhead (the run's wall time minus that
span) and the peak RSS of every task process (sampled every 50 ms from the processes Airflow titles
``airflow worker -- <task instance id>``). Targets: every task process under 800 MB
(``OPENAI_BATCH_TASK_MEMORY_MB``), the run succeeds and loads every row once; at 200,000 rows the overhead is
under 60 s.

With ``--celery`` the stack runs the CeleryExecutor (PostgreSQL metadata database, Redis broker) with two
``airflow celery worker`` processes, each with its own working directory, as on two hosts; e.g. the design point:

    python bench/bench_e2e.py [--rows 200000 1000000] [--seconds-per-request 0.0002] [--celery]
    python bench/bench_e2e.py --rows 5000000 --celery
"""

import argparse
import shutil
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

WORK = Path(".bench/e2e")
DAG_ID = "openai_batch_inference"
TASK_LIMIT_MB = 800
TITLE = "airflow worker -- "


class TaskMemory:
    """The peak RSS of every task process, by task instance id, sampled in a thread."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "TaskMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                title = " ".join(proc.info["cmdline"] or [])
                if title.startswith(TITLE) and proc.info["memory_info"] is not None:
                    ti = title.removeprefix(TITLE).strip()
                    self.peaks[ti] = max(self.peaks.get(ti, 0), proc.info["memory_info"].rss)


def seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--seconds-per-request", default="0.0002")
    parser.add_argument("--celery", action="store_true", help="CeleryExecutor with two workers")
    parser.add_argument("--max-parallel", default="4", help="batches in flight per run (OPENAI_BATCH_MAX_PARALLEL)")
    args = parser.parse_args()

    from batchkit.dev.devstack import Stack
    from batchkit.dev.sample import write_sample_partition

    shutil.rmtree(WORK, ignore_errors=True)
    emulator = ("--seconds-per-request", args.seconds_per_request)
    celery = _celery_settings() if args.celery else {}
    settings = {"OPENAI_BATCH_MAX_PARALLEL": args.max_parallel}
    stack = Stack(WORK.resolve(), poll_seconds=2, emulator_args=emulator, extra_env=settings, **celery)
    partitions = {f"2026-11-{10 + i}": rows for i, rows in enumerate(args.rows)}
    for partition, rows in partitions.items():
        write_sample_partition(stack.data_dir / "reviews" / f"dt={partition}", rows, files=max(1, rows // 100_000))
    ok = True
    try:
        stack.start(progress=lambda message: None)
        if args.celery:
            for name in ("worker1", "worker2"):  # as on two hosts: own working directory and log folder
                host = WORK.resolve() / name
                (host / "logs").mkdir(parents=True)
                worker = f"celery worker --concurrency 2 --skip-serve-logs --celery-hostname {name}@%h"
                stack.add(worker, name, {"AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(host / "logs")}, host)
        stack.wait_for_dag(DAG_ID)
        for partition, rows in partitions.items():
            ok &= run_partition(stack, partition, rows)
    finally:
        stack.stop()
        if celery:
            _drop_celery(celery)
    print("all targets met" if ok else "some targets MISSED")
    return 0 if ok else 1


def run_partition(stack: Any, partition: str, rows: int) -> bool:
    before = {b["id"] for b in _batches(stack)}
    run_id = f"bench_{partition}"
    with TaskMemory() as memory:
        started = time.monotonic()
        stack.trigger(DAG_ID, run_id, {"partition": partition, "max_requests_per_file": 50_000})
        run = stack.wait_for_run(DAG_ID, run_id, timeout=3600, progress=lambda message: None)
        wall = time.monotonic() - started
    batches = [b for b in _batches(stack) if b["id"] not in before]
    if run["state"] != "success":
        print(f"{rows:,} rows: the run ended {run['state']}; logs in {WORK}")
        return False
    loaded, distinct = _loaded(stack, partition)
    print(f"{rows:,} rows in {len(batches)} batch files: run wall time {wall:.1f}s, {loaded:,} rows loaded")
    stages: dict[str, float] = {}
    peaks: dict[str, int] = {}
    for task in run["tasks"]:
        name = task["task_id"]
        stages[name] = max(stages.get(name, 0.0), seconds(task["start_date"], task["end_date"]))
        peaks[name] = max(peaks.get(name, 0), memory.peaks.get(task.get("id", ""), 0))
    for name in ("split", "batch.submit", "batch.wait", "batch.collect", "load", "report"):
        if name in stages:
            print(f"  {name:14s} {stages[name]:7.1f}s (longest)   peak RSS {peaks[name] / 2**20:6.0f} MB")
    span = max(b["completed_at"] for b in batches) - min(b["in_progress_at"] for b in batches)
    overhead = wall - span
    print(f"  emulator processing span {span:.1f}s; Airflow overhead {overhead:.1f}s")
    worst = max(peaks.values()) / 2**20
    checks = [
        (f"every row loaded once ({loaded:,} rows, {distinct:,} ids, of {rows:,})", loaded == distinct == rows),
        (f"largest task process {worst:.0f} MB (target < {TASK_LIMIT_MB} MB)", 0 < worst < TASK_LIMIT_MB),
    ]
    if rows <= 200_000:
        checks.append((f"Airflow overhead {overhead:.1f}s (target < 60 s)", overhead < 60))
    for text, met in checks:
        print(f"  {text}: {'OK' if met else 'MISSED'}")
    return all(met for _, met in checks)


def _loaded(stack: Any, partition: str) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(stack.duckdb_path), read_only=True) as con:
        query = "SELECT count(*), count(DISTINCT review_id) FROM review_sentiment WHERE partition_key = ?"
        return con.execute(query, [partition]).fetchone()


def _batches(stack: Any) -> list[dict]:
    import httpx

    batches, params = [], {"limit": 100}
    while True:
        page = httpx.get(f"{stack.emulator.base_url}/batches", params=params, timeout=30).json()
        batches += page["data"]
        if not page.get("has_more"):
            return batches
        params["after"] = page["data"][-1]["id"]


CELERY_DB, CELERY_BROKER = "openai_batch_bench_e2e", "redis://127.0.0.1:6379/14"


def _celery_settings() -> dict[str, Any]:
    """A fresh PostgreSQL metadata database and Redis broker database for the CeleryExecutor."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {CELERY_DB} WITH (FORCE)")
        con.execute(f"CREATE DATABASE {CELERY_DB}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{CELERY_DB}"
    return {"executor": "CeleryExecutor", "metadata_db": url, "broker_url": CELERY_BROKER}


def _drop_celery(celery: dict[str, Any]) -> None:
    import psycopg
    import redis

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {CELERY_DB} WITH (FORCE)")
    redis.Redis.from_url(celery["broker_url"]).flushdb()


if __name__ == "__main__":
    sys.exit(main())
