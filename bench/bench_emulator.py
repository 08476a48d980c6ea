"""Benchmark: a 50,000-request chat batch through the emulator (echo backend), upload to download.

Prints wall time per phase, requests/s and the emulator's peak RSS, and compares with the targets
(under 60 s end to end on a 2-core machine, RSS under 500 MB).

    python bench/bench_emulator.py [--requests 50000]
"""

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

import psutil
from openai import OpenAI

from batchkit.dev.sample import write_sample_partition
from batchkit.emulator.launcher import start_emulator
from batchkit.split.splitter import SplitConfig, split

WORK = Path(".bench/emulator")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    write_sample_partition(WORK / "data", args.requests, files=2)
    manifest = split(str(WORK / "data"), WORK / "split", SplitConfig(model="gpt-4o-mini", prompt_column="text"))
    input_path = WORK / "split" / manifest.files[0].path
    print(f"input: {manifest.files[0].requests:,} requests, {manifest.files[0].bytes / 1e6:.1f} MB")

    emu = start_emulator(WORK / "state")
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        proc = psutil.Process(emu.process.pid)
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    try:
        client = OpenAI(base_url=emu.base_url, api_key="unused")
        phases = {}
        started = time.perf_counter()
        with input_path.open("rb") as handle:
            file_id = client.files.create(file=handle, purpose="batch").id
        phases["upload"] = time.perf_counter() - started
        batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.2)
            batch = client.batches.retrieve(batch.id)
        phases["process"] = time.perf_counter() - started - phases["upload"]
        out = WORK / "output.jsonl"
        client.files.content(batch.output_file_id).write_to_file(out)
        total = time.perf_counter() - started
        phases["download"] = total - phases["upload"] - phases["process"]
    finally:
        stop.set()
        emu.stop()
    lines = sum(1 for _ in out.open("rb"))
    rss_mb = peak[0] / 2**20
    print(
        f"status {batch.status}: {batch.request_counts.completed:,} completed, {lines:,} output lines "
        f"({out.stat().st_size / 1e6:.1f} MB)"
    )
    print("phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()))
    print(
        f"end to end: {total:.1f}s, {args.requests / total:,.0f} requests/s "
        f"(target < 60 s: {'OK' if total < 60 else 'MISSED'})"
    )
    print(f"emulator peak RSS: {rss_mb:.0f} MB (target < 500 MB: {'OK' if rss_mb < 500 else 'MISSED'})")
    return 0 if batch.status == "completed" and lines == args.requests and total < 60 and rss_mb < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
