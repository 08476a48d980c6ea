"""Benchmark: Parquet partition -> Batch JSONL, batchkit vs the I/O floor vs a naive pandas splitter.

Each approach runs in its own process (peak RSS is per approach); all run in the same invocation so the
ratios compare like with like on a noisy machine. Prints rows/s, MB/s, peak RSS and the targets.

    python bench/bench_split.py [--rows 1000000] [--naive-rows 200000] [--also-rows 5000000]
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(".bench")
MODEL, TEMPLATE_COLUMN = "gpt-4o-mini", "text"


def worker(kind: str, source: str, out: str, limit: int) -> dict:
    started = time.perf_counter()
    if kind == "batchkit":
        from batchkit.split.splitter import SplitConfig, split

        manifest = split(source, out, SplitConfig(model=MODEL, prompt_column="text", id_column="review_id"))
        rows, size = manifest.totals["requests"], manifest.totals["bytes"]
    elif kind == "floor":
        from batchkit.split.source import iter_batches, open_files, resolve_files

        rows = size = 0
        Path(out).mkdir(parents=True, exist_ok=True)
        with open(Path(out) / "floor.bin", "wb") as sink:
            for file in open_files(resolve_files(source), [])[0]:
                for _, batch in iter_batches(file, ["review_id", "text"]):
                    data = batch.column("text").buffers()[2].to_pybytes()
                    pad = b" " * 110 * batch.num_rows  # the JSON framing bytes batchkit writes per line
                    sink.write(data + pad)
                    rows += batch.num_rows
                    size += len(data) + len(pad)
    else:  # naive: what a first attempt with pandas looks like
        import pandas as pd

        from batchkit.split.source import resolve_files

        frame = pd.concat(pd.read_parquet(p) for p in resolve_files(source)).head(limit)
        Path(out).mkdir(parents=True, exist_ok=True)
        rows = size = 0
        sink = open(Path(out) / "batch-0.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        for _, row in frame.iterrows():
            if rows and rows % 50_000 == 0:
                sink.close()
                sink = open(Path(out) / f"batch-{rows // 50_000}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
            line = (
                json.dumps(
                    {
                        "custom_id": str(row["review_id"]),
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {"model": MODEL, "messages": [{"role": "user", "content": row["text"]}]},
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
            size += sink.write(line)
            rows += 1
        sink.close()
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "rows": rows, "bytes": size, "seconds": seconds, "rss_mb": rss_mb}


def run(kind: str, source: Path, limit: int = 0) -> dict:
    out = WORK / f"out-{kind}"
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(source), str(out), str(limit)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    stats["rows_s"] = stats["rows"] / stats["seconds"]
    stats["mb_s"] = stats["bytes"] / 1e6 / stats["seconds"]
    print(
        f"  {kind:9s} {stats['rows']:>10,} rows {stats['seconds']:7.1f}s {stats['rows_s']:>10,.0f} rows/s "
        f"{stats['mb_s']:7.1f} MB/s  peak RSS {stats['rss_mb']:6.0f} MB",
        flush=True,
    )
    return stats


def partition(rows: int) -> Path:
    path = WORK / f"reviews-{rows}" / "dt=2026-11-24"
    if not path.exists():
        print(f"generating {rows:,} sample rows in {path} ...", flush=True)
        # in a child process: Linux keeps a process's peak RSS across fork + exec, so the workers started later
        # would report this one's peak (the sample's rows) as their own
        code = "import sys; from batchkit.dev.sample import write_sample_partition as w; w(sys.argv[1], int(sys.argv[2]), files=int(sys.argv[3]))"
        subprocess.run(
            [sys.executable, "-c", code, str(path.with_suffix(".tmp")), str(rows), str(max(1, rows // 250_000))],
            check=True,
        )
        path.with_suffix(".tmp").rename(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=200_000, help="rows for the (slow, memory-hungry) naive run")
    parser.add_argument("--also-rows", type=int, default=0, help="a second, larger size to show RSS stays flat")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, source, out, limit = args.worker
        print(json.dumps(worker(kind, source, out, int(limit))))
        return 0

    source = partition(args.rows)
    print(f"split benchmark: {args.rows:,} rows, prompts 200-2,000 chars with non-ASCII text")
    floor = run("floor", source)
    ours = run("batchkit", source)
    naive = run("naive", source, args.naive_rows)
    vs_floor = ours["rows_s"] / floor["rows_s"]
    vs_naive = ours["rows_s"] / naive["rows_s"]
    print(f"batchkit / floor speed: {vs_floor:.0%} (target >= 40%: {'OK' if vs_floor >= 0.4 else 'MISSED'})")
    print(f"batchkit / naive speed: {vs_naive:.1f}x (target >= 5x: {'OK' if vs_naive >= 5 else 'MISSED'})")
    print(
        f"batchkit peak RSS: {ours['rss_mb']:.0f} MB (target <= 512 MB: {'OK' if ours['rss_mb'] <= 512 else 'MISSED'})"
    )
    ok = vs_floor >= 0.4 and vs_naive >= 5 and ours["rss_mb"] <= 512
    if args.also_rows:
        big = run("batchkit", partition(args.also_rows))
        growth = big["rss_mb"] / ours["rss_mb"]
        print(
            f"peak RSS at {args.also_rows:,} rows: {big['rss_mb']:.0f} MB ({growth:.2f}x of {args.rows:,} rows; "
            f"flat = within 1.25x: {'OK' if growth <= 1.25 else 'MISSED'})"
        )
        ok = ok and growth <= 1.25 and big["rss_mb"] <= 512
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
