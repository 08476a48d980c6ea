"""Benchmark: one 200,000-row partition (4 batch files) end to end through real Airflow components (scheduler,
triggerer, LocalExecutor) and the emulator (echo backend).

Prints the wall time of each stage (from the task instances), the emulator's processing span (first batch in
progress -> last batch completed) and the Airflow overhead: the run's wall time minus that span.
Target: overhead under 60 s.

    python bench/bench_e2e.py [--rows 200000] [--seconds-per-request 0.0002]
"""

import argparse
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

WORK = Path(".bench/e2e")
DAG_ID = "openai_batch_inference"
PARTITION = "2026-11-24"


def seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seconds-per-request", default="0.0002")
    args = parser.parse_args()

    from batchkit.devstack import Stack
    from batchkit.sample import write_sample_partition

    shutil.rmtree(WORK, ignore_errors=True)
    stack = Stack(WORK.resolve(), poll_seconds=2, emulator_args=("--seconds-per-request", args.seconds_per_request))
    write_sample_partition(stack.data_dir / "reviews" / f"dt={PARTITION}", args.rows, files=4)
    stack.start(progress=lambda message: None)
    try:
        stack.wait_for_dag(DAG_ID)
        started = time.monotonic()
        stack.trigger(DAG_ID, "bench_1", {"partition": PARTITION, "max_requests_per_file": 50_000})
        run = stack.wait_for_run(DAG_ID, "bench_1", timeout=1800, progress=lambda message: None)
        wall = time.monotonic() - started
        batches = _batches(stack)
    finally:
        stack.stop()
    if run["state"] != "success":
        print(f"the run ended {run['state']}; logs in {WORK}")
        return 1
    print(f"end to end: {args.rows:,} rows in {len(batches)} batch files, run wall time {wall:.1f}s")
    stages: dict[str, float] = {}
    for task in run["tasks"]:
        stages[task["task_id"]] = max(stages.get(task["task_id"], 0.0), seconds(task["start_date"], task["end_date"]))
    for name in ("split", "batch.submit", "batch.wait", "batch.collect", "load"):
        print(f"  {name:14s} {stages.get(name, 0.0):7.1f}s (longest task instance)")
    span = max(b["completed_at"] for b in batches) - min(b["in_progress_at"] for b in batches)
    overhead = wall - span
    print(f"  emulator processing span {span:.1f}s; Airflow overhead {overhead:.1f}s")
    ok = overhead < 60
    print(f"Airflow overhead {overhead:.1f}s (target < 60 s): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


def _batches(stack: Any) -> list[dict]:
    import httpx

    return httpx.get(f"{stack.emulator.base_url}/batches", params={"limit": 100}, timeout=30).json()["data"]


if __name__ == "__main__":
    sys.exit(main())
