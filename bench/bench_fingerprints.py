"""Benchmark: the collect step's fingerprints of one 50,000-request batch file, on local disk and on S3 (a local
moto server), three ways:
  before    as collect did until 2026-12: recomputed from the whole batch input JSONL, read line by line through
            the storage's file object (on S3 s3fs's readline copies a 50 MB block per line)
  jsonl     the same from the JSONL, read in 8 MB blocks (what collect still does for a manifest without
            rows_span, e.g. one written before version 4)
  now       read from the rows the split staged: the manifest, the rows file's footer and the two columns of the
            row groups holding the file's rows
Prints seconds (best of 3; the slow 'before' on S3 runs once) and bytes fetched from S3 (s3fs ranged GETs).

    python bench/bench_fingerprints.py [--rows 50000]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(".bench/fingerprints")
BUDGET = 120.0  # seconds 'before' may take on S3


def before(batch_file: str, budget: float = float("inf")) -> dict[str, str]:
    """``batch_inputs.fingerprints`` as it was: every line through ``open_file``'s own iteration; stops after
    ``budget`` seconds (on S3 it takes tens of minutes for this file)."""
    import orjson

    from batchkit.ledger import fingerprint
    from batchkit.split.requests import ID_PREFIX
    from batchkit.storage import open_file

    found, started = {}, time.perf_counter()
    with open_file(batch_file) as lines:
        for raw in lines:
            if time.perf_counter() - started > budget:
                break
            if raw.strip():
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                custom_id = orjson.loads(line)["custom_id"]
                found[custom_id] = fingerprint(line[len(ID_PREFIX) + len(orjson.dumps(custom_id)) :])
    return found


def measure(label: str, read, repeat: int = 3) -> dict:
    """Best of ``repeat`` runs of ``read()``, with the bytes S3 served during the last one."""
    import s3fs.core

    served = [0]
    fetch = s3fs.core.S3File._fetch_range

    def counted(self, start, end):
        data = fetch(self, start, end)
        served[0] += len(data)
        return data

    s3fs.core.S3File._fetch_range = counted
    try:
        best = float("inf")
        for _ in range(repeat):
            served[0] = 0
            started = time.perf_counter()
            prints = read()
            best = min(best, time.perf_counter() - started)
    finally:
        s3fs.core.S3File._fetch_range = fetch
    return {"label": label, "seconds": best, "s3_bytes": served[0], "requests": len(prints), "prints": prints}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()

    import s3fs

    from batchkit.dev.sample import write_sample_partition
    from batchkit.emulator.launcher import free_port
    from batchkit.split.batch_inputs import batch_fingerprints, fingerprints
    from batchkit.split.manifest import MANIFEST_NAME, ROWS_NAME, Manifest
    from batchkit.split.splitter import SplitConfig, split

    source, out = WORK / f"source-{args.rows}", WORK / f"split-{args.rows}"
    if not source.exists():
        write_sample_partition(source, args.rows, files=4)
    manifest = split(str(source), out, SplitConfig(model="gpt-4o-mini", prompt_column="text", id_column="review_id"))
    entry = manifest.files[0]
    print(
        f"{entry.requests:,} requests in {entry.path}: {entry.bytes / 1e6:.1f} MB of JSONL; rows file "
        f"{(out / ROWS_NAME).stat().st_size / 1e6:.1f} MB, manifest {(out / MANIFEST_NAME).stat().st_size:,} B"
    )

    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
        fs = s3fs.S3FileSystem(key="x", secret="x", client_kwargs={"endpoint_url": endpoint})
        for _ in range(100):
            try:
                fs.mkdir("bench")
                break
            except Exception:  # not up yet
                time.sleep(0.1)
        for name in (entry.path, ROWS_NAME, MANIFEST_NAME):
            fs.put_file(str(out / name), f"bench/inputs/{name}")
        for where, root in (("local", str(out)), ("s3", "s3://bench/inputs")):
            path, manifest_url = f"{root}/{entry.path}", f"{root}/{MANIFEST_NAME}"
            expected = fingerprints(path)
            for label, read, repeat in (
                ("before", lambda: before(path, BUDGET if where == "s3" else float("inf")), 1),  # noqa: B023
                ("jsonl", lambda: fingerprints(path), 3),  # noqa: B023
                ("now", lambda: batch_fingerprints(path, manifest_url, 0, entry.sha256), 3),  # noqa: B023
            ):
                result = measure(f"{where} {label}", read, repeat)
                prints = result.pop("prints")
                if len(prints) < len(expected):  # out of time: how far it got
                    print(
                        f"{where} {label:<8} stopped after {BUDGET:.0f} s at line {len(prints):,} of {len(expected):,}"
                    )
                    continue
                assert prints == expected
                shown = f"{result['s3_bytes'] / 1e6:8.2f} MB from S3" if result["s3_bytes"] else ""
                if label != "now" and not shown:
                    shown = f"{entry.bytes / 1e6:8.2f} MB read"
                print(f"{result['label']:<14} {result['seconds']:8.3f} s  {shown}", flush=True)
            assert Manifest.load(manifest_url).files[0].rows_span is not None
    finally:
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    main()
