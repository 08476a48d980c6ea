"""Benchmark: N concurrent batch waits on one triggerer, against emulator batches that stay in progress.

Runs N ``OpenAIBatchStatusTrigger.run()`` loops in one asyncio loop in one process, as the triggerer does, for
``--seconds`` at a 5 s poll interval, and reports CPU (cores on average), peak RSS and API requests/s:
  shared       what the trigger does now: one aiohttp session per connection and event loop (``polling.polling``)
  per_trigger  the first design, one AsyncOpenAI client per trigger, polling through the SDK (baseline, same run)
Target at 1,000 waits and 5 s polls: under 0.2 core on average and under 400 MB RSS (the triggerer's process only:
the emulator runs in its own).

    python bench/bench_triggerer_scale.py [--waits 100 500 1000] [--seconds 40]
"""

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path

from worker import run_worker

WORK = Path(".bench/triggerer")
POLL_SECONDS = 5.0


def make_batches(base_url: str, count: int) -> list[str]:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="bench", max_retries=5)
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions"}
    line["body"] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    file_id = client.files.create(file=("in.jsonl", json.dumps(line).encode() + b"\n"), purpose="batch").id
    return [
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(count)
    ]


def worker(mode: str, batch_ids: list[str], seconds: float) -> dict:
    from openai_batch import polling, triggers
    from openai_batch.hooks import OpenAIBatchHook

    polls = 0
    status = polling.Poller.status

    async def counted(poller: polling.Poller, batch_id: str) -> dict:
        nonlocal polls
        polls += 1
        return await status(poller, batch_id)

    polling.Poller.status = counted
    if mode == "per_trigger":

        @contextlib.asynccontextmanager
        async def own_client(conn_id: str):  # one SDK client per trigger, polls through it, no shared gate
            client = await OpenAIBatchHook(conn_id=conn_id).aget_conn()
            client = client.with_options(timeout=polling.POLL_TIMEOUT_SECONDS, max_retries=polling.POLL_RETRIES)
            poller = polling.Poller(sdk=client, http=None, gate=asyncio.Semaphore(len(batch_ids)))
            yield polling.Pollers(conn_id, current=poller, fresh_until=float("inf"))

        triggers.polling = own_client

    async def follow(batch_id: str) -> None:
        trigger = triggers.OpenAIBatchStatusTrigger(batch_id, "openai_bench", poll_interval=POLL_SECONDS)
        async for _ in trigger.run():
            return

    async def main() -> None:
        tasks = [asyncio.create_task(follow(b)) for b in batch_ids]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(main())
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    return {
        "cores": used / wall,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "requests_s": polls / wall,
    }


def run(mode: str, batch_ids: list[str], seconds: float, base_url: str) -> dict:
    ids = WORK / f"ids-{len(batch_ids)}.json"
    ids.write_text(json.dumps(batch_ids))
    connection = json.dumps({"conn_type": "openai", "password": "bench", "host": base_url})
    env = {**os.environ, "AIRFLOW_CONN_OPENAI_BENCH": connection, "PYTHONPATH": "plugins"}
    stats = run_worker(__file__, mode, str(ids), str(seconds), env=env)
    print(
        f"  {mode:11s} {len(batch_ids):5,} waits  {stats['cores']:.2f} core  peak RSS {stats['rss_mb']:6.0f} MB  "
        f"{stats['requests_s']:6.1f} requests/s",
        flush=True,
    )
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waits", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, ids, seconds = args.worker
        print(json.dumps(worker(mode, json.loads(Path(ids).read_text()), float(seconds))))
        return 0
    from batchkit.emulator.launcher import start_emulator

    WORK.mkdir(parents=True, exist_ok=True)
    emulator = start_emulator(WORK / f"emulator-{os.getpid()}", "--stuck-rate", "1", "--validation-seconds", "0")
    try:
        most = max(args.waits)
        print(f"creating {most:,} batches that stay in progress on the emulator ({emulator.base_url})")
        batch_ids = make_batches(emulator.base_url, most)
        figures = {n: run("shared", batch_ids[:n], args.seconds, emulator.base_url) for n in sorted(args.waits)}
        baseline = run("per_trigger", batch_ids[:most], args.seconds, emulator.base_url)
    finally:
        emulator.stop()
    ours = figures[most]
    checks = [
        (f"{most:,} waits: {ours['cores']:.2f} core (target < 0.2)", ours["cores"] < 0.2),
        (f"{most:,} waits: peak RSS {ours['rss_mb']:.0f} MB (target < 400)", ours["rss_mb"] < 400),
        (f"per_trigger baseline: {baseline['cores']:.2f} core, {baseline['rss_mb']:.0f} MB", True),
    ]
    for text, ok in checks:
        print(f"{text}{': OK' if ok and 'target' in text else ': MISSED' if not ok else ''}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
