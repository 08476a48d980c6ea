"""`batchkit split s3://...` against a real local S3 endpoint (moto server): listing, streaming reads, the id
check through DuckDB, merging back from S3, clear errors for missing buckets, prefixes and denied access, and
peak memory on a partition of more than 200 MB of requests."""

import json
import secrets

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.cli import main
from batchkit.errors import InputError
from batchkit.ledger import Ledger
from batchkit.results.merge import merge_partition
from batchkit.results.result_line import parse_line
from batchkit.results.results import from_results, write_results
from batchkit.split.batch_inputs import batch_fingerprints, fingerprints, stored_fingerprints
from batchkit.split.manifest import Manifest
from batchkit.split.splitter import SplitConfig, split


@pytest.fixture
def partition(s3fs_client, s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    bucket = f"lake-{secrets.token_hex(4)}"
    s3fs_client.mkdir(bucket)
    prefix = f"{bucket}/reviews/dt=2026-11-24"
    for index in range(2):
        ids = list(range(index * 50, index * 50 + 50))
        with s3fs_client.open(f"{prefix}/part-{index}.parquet", "wb") as handle:
            pq.write_table(pa.table({"id": ids, "text": [f"review {i} ✓" for i in ids]}), handle)
    s3fs_client.pipe(f"{prefix}/_SUCCESS", b"")
    return f"s3://{prefix}"


def test_split_and_merge_from_s3(partition, tmp_path, s3fs_client):
    manifest = split(
        partition + "/", tmp_path / "out", SplitConfig(model="m", prompt_column="text", id_column="id", max_requests=60)
    )
    assert [s["path"] for s in manifest.sources] == [f"{partition}/part-0.parquet", f"{partition}/part-1.parquet"]
    assert [f.requests for f in manifest.files] == [60, 40] and manifest.totals["rows_read"] == 100
    bucket = partition.split("/")[2]
    ledger = Ledger(f"s3://{bucket}/staging/d/2026-11-24/_ledger")
    assert ledger.claim("key", "run_a", "sha") is None and ledger.claim("key", "run_b", "sha").owner == "run_a"
    for index in range(2):
        batch_file = tmp_path / "out" / f"batch-{index:05d}.jsonl"
        lines = [json.loads(line) for line in batch_file.read_bytes().splitlines()]
        results = [
            parse_line(
                {
                    "custom_id": line["custom_id"],
                    "error": None,
                    "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "ok"}}]}},
                },
                f"batch_{index}",
            )
            for line in lines
        ]
        write_results(from_results(results), fingerprints(batch_file), 1, tmp_path / f"r{index}.parquet")
        ledger.record_results(f"batch_{index}", tmp_path / f"r{index}.parquet")
    assert len(ledger.answered()) == 100
    s3fs_client.put(str(tmp_path / "out" / "rows.parquet"), f"{bucket}/staging/d/2026-11-24/r/rows.parquet")
    rows = f"s3://{bucket}/staging/d/2026-11-24/r/rows.parquet"  # staged rows and ledger both on S3
    counts = merge_partition(rows, ledger.result_files(), tmp_path / "m.parquet")
    assert counts == {"rows": 100, "ok": 100, "errors": 0, "invalid": 0, "unanswered": 0}
    texts = {r["id"]: r["text"] for r in pq.read_table(tmp_path / "m.parquet").to_pylist()}
    assert texts[60] == "review 60 ✓" and len(texts) == 100


def test_split_writes_to_s3(partition, s3fs_client):
    bucket = partition.split("/")[2]
    out = f"s3://{bucket}/batches/dt=2026-11-24"
    assert (
        main(["split", partition, "--out", out, "--model", "m", "--prompt-column", "text", "--max-requests", "60"]) == 0
    )
    names = sorted(p.rsplit("/", 1)[-1] for p in s3fs_client.ls(out.removeprefix("s3://")))
    assert names == ["batch-00000.jsonl", "batch-00001.jsonl", "manifest.json", "rows.parquet"]
    manifest = Manifest.load(f"{out}/manifest.json")
    assert [f.requests for f in manifest.files] == [60, 40]
    for index, entry in enumerate(manifest.files):  # collect reads them from the staged rows, in ranges
        path = f"{out}/{entry.path}"
        assert stored_fingerprints(f"{out}/rows.parquet", entry) == fingerprints(path)
        assert batch_fingerprints(path, f"{out}/manifest.json", index, entry.sha256) == fingerprints(path)
    assert len(s3fs_client.cat(f"{out.removeprefix('s3://')}/batch-00001.jsonl").splitlines()) == 40


def test_duplicate_ids_in_s3_are_located(partition, s3fs_client, tmp_path):
    with s3fs_client.open(partition.removeprefix("s3://") + "/part-2.parquet", "wb") as handle:
        pq.write_table(pa.table({"id": [7], "text": ["again"]}), handle)
    with pytest.raises(InputError, match=r"duplicate id '7'.*part-0.parquet row 7.*part-2.parquet row 0"):
        split(partition, tmp_path / "out", SplitConfig(model="m", prompt_column="text", id_column="id"))


def test_missing_bucket_and_prefix(partition, tmp_path, capsys):
    config = SplitConfig(model="m", prompt_column="text")
    with pytest.raises(InputError, match=r"does not exist|cannot list"):
        split("s3://no-such-bucket-here/x/", tmp_path / "o", config)
    bucket = partition.split("/")[2]
    with pytest.raises(InputError, match="does not exist"):
        split(f"s3://{bucket}/reviews/dt=1999-01-01/", tmp_path / "o", config)
    assert main(f"split s3://{bucket}/nothing/ --out {tmp_path / 'o'} --model m --prompt-column text".split()) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_access_denied_names_the_source(locked_s3, tmp_path, monkeypatch):
    import s3fs

    endpoint, credentials = locked_s3
    s3fs.S3FileSystem.clear_instance_cache()  # fsspec reuses filesystems built from earlier tests' environment
    for name, value in {**credentials, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(InputError, match=r"access to s3://locked/reviews/ was denied .*check the credentials"):
            split("s3://locked/reviews/", tmp_path / "out", SplitConfig(model="m", prompt_column="text"))
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert not (tmp_path / "out").exists()


# VmHWM is this process's own peak RSS (getrusage's maxrss would include the parent's RSS inherited at fork)
MEASURE = """
import sys
from batchkit.cli import main
code = main(sys.argv[1:])
print("peak_rss_mb", next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024)
sys.exit(code)
"""


def test_large_s3_partition_streams_in_bounded_memory(s3fs_client, s3_endpoint, monkeypatch, tmp_path):
    """> 200 MB of requests from one S3 Parquet file: several batch files within a fixed memory bound (peak RSS is
    flat in the data size: bench/bench_split.py shows the same at 1M and 5M rows)."""
    import subprocess
    import sys

    import numpy as np

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    rows, width = 120_000, 2_000
    base = " ".join(np.random.default_rng(1).choice(["alpha", "beta", "gamma", "delta", "omega"], 400_000))
    starts = np.random.default_rng(2).integers(0, len(base) - width, rows)
    text = pa.array([base[s : s + width] for s in starts])
    bucket = f"big-{secrets.token_hex(4)}"
    s3fs_client.mkdir(bucket)
    with s3fs_client.open(f"{bucket}/t/dt=1/part-0.parquet", "wb") as handle:
        pq.write_table(pa.table({"id": range(rows), "text": text}), handle, row_group_size=10_000, compression="zstd")
    del text, base

    out = tmp_path / "out"
    args = ["split", f"s3://{bucket}/t/dt=1/", "--out", str(out), "--model", "m", "--prompt-column", "text"]
    done = subprocess.run([sys.executable, "-c", MEASURE, *args, "--id-column", "id"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split("peak_rss_mb")[-1])
    manifest = Manifest.load(out / "manifest.json")
    total_mb = manifest.totals["bytes"] / 2**20
    print(f"\nsplit {total_mb:.0f} MB of requests from S3 into {len(manifest.files)} files, peak RSS {peak_mb} MB")
    assert total_mb > 200 and len(manifest.files) >= 2
    assert all(f.bytes <= 200 * 2**20 for f in manifest.files)
    assert sum(f.requests for f in manifest.files) == rows
    assert peak_mb < 640, f"peak RSS {peak_mb} MB: the split must stream, not hold the partition"


def test_rows_stream_to_s3_and_a_failed_split_leaves_none(partition, tmp_path, s3fs_client):
    bucket = partition.split("/")[2]
    rows_url = f"s3://{bucket}/staging/run/inputs/rows.parquet"
    config = SplitConfig(model="m", prompt_column="text", id_column="id", max_requests=60)
    split(partition, tmp_path / "out", config, rows_url=rows_url)
    assert not (tmp_path / "out" / "rows.parquet").exists()
    with s3fs_client.open(rows_url.removeprefix("s3://"), "rb") as handle:
        assert pq.read_table(handle).column("id").to_pylist() == list(range(100))

    def upload_fails(path):
        raise OSError("the upload of a batch file failed")

    s3fs_client.rm(rows_url.removeprefix("s3://"))
    with pytest.raises(OSError, match="upload of a batch file failed"):
        split(partition, tmp_path / "again", config, on_file=upload_fails, rows_url=rows_url)
    assert not s3fs_client.exists(rows_url.removeprefix("s3://")) and not (tmp_path / "again").exists()
