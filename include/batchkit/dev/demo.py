"""``make demo``: the main DAG end to end on the embedded defaults (emulator + DuckDB + SQLite Airflow).

Generates a sample partition, starts the emulator and real Airflow components, triggers
``openai_batch_inference`` through the REST API, waits for it (the batch waits run on the triggerer),
then prints what was loaded into DuckDB and where to look. ``make stop`` stops the stack.

``--vendor anthropic`` (``make demo VENDOR=anthropic``) runs the same DAG on the emulator's Anthropic Message
Batches routes, ``--vendor azure`` on its Azure OpenAI routes: the stack always has one connection per vendor
(``VENDORS``), and the run names the vendor's in its ``conn_id`` Param, with the vendor's model. Each vendor loads
its own partition, so no vendor's answers come from another's ledger.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..cost.pricing import usd
from ..emulator.launcher import free_port
from ..sentiment import SENTIMENT_SCHEMA
from .devstack import REPO, Stack, stop_recorded
from .sample import write_sample_partition

DAG_ID = "openai_batch_inference"
PARTITION = "2026-11-24"


@dataclass(frozen=True)
class Vendor:
    """How the demo reaches one vendor's routes on the emulator."""

    conn_id: str
    model: str
    partition: str
    api: str  # the emulator route where its batches are listed (after the emulator's root URL)


VENDORS = {
    "openai": Vendor("openai_default", "gpt-4o-mini", PARTITION, "/v1/batches"),
    "anthropic": Vendor("anthropic_default", "claude-haiku-4-5", "2026-11-23", "/v1/messages/batches"),
    "azure": Vendor("azure_default", "gpt-4o-mini", "2026-11-22", "/openai/v1/batches"),  # deployment = its model
}


def vendor_connections(emulator_url: str) -> dict[str, str]:
    """The demo stack's environment for the other vendors' connections, all on the emulator at ``emulator_url``
    (its root), and the allow-list that lets a run name any of them (``openai_default`` is the stack's own)."""
    anthropic = {"conn_type": "anthropic", "password": "emulator", "host": emulator_url}
    azure = {
        "conn_type": "openai",
        "password": "emulator",
        "host": f"{emulator_url}/openai/v1",
        "extra": {"vendor": "azure"},  # its host is not on Azure: the extra names the vendor
    }
    return {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(anthropic),
        "AIRFLOW_CONN_AZURE_DEFAULT": json.dumps(azure),
        "OPENAI_BATCH_ALLOWED_API_CONNS": ",".join(v.conn_id for v in VENDORS.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(REPO / ".demo"), help="where the demo keeps everything")
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the sample partition")
    parser.add_argument("--requests-per-file", type=int, default=5_000, help="max requests per batch file")
    parser.add_argument("--vendor", choices=list(VENDORS), default="openai", help="whose batch API the run uses")
    parser.add_argument("--stop", action="store_true", help="stop a running demo stack and exit")
    args = parser.parse_args(argv)
    root, vendor = Path(args.root), VENDORS[args.vendor]
    stopped = stop_recorded(root)
    if args.stop:
        print(f"stopped: {', '.join(stopped)}" if stopped else "no demo stack is running")
        return 0

    started = time.monotonic()
    emulator_port = free_port(8000)
    stack = Stack(
        root,
        api_port=free_port(8080),
        emulator_port=emulator_port,
        poll_seconds=5,
        emulator_args=("--seconds-per-request", "0.002"),
        extra_env=vendor_connections(f"http://127.0.0.1:{emulator_port}"),
    )
    partition = vendor.partition
    partition_dir = stack.data_dir / "reviews" / f"dt={partition}"
    if not partition_dir.exists():
        print(f"writing a sample partition of {args.rows:,} reviews to {partition_dir}")
        write_sample_partition(partition_dir, args.rows, files=4)
    try:
        stack.start()
        stack.wait_for_dag(DAG_ID)
    except Exception:
        stack.stop()
        raise
    run_id = f"demo_{time.strftime('%Y%m%dT%H%M%S')}"
    print(f"triggering {DAG_ID} run {run_id} for partition dt={partition} on {args.vendor} ({vendor.conn_id})")
    conf = {
        "partition": partition,
        "conn_id": vendor.conn_id,  # the connection decides the vendor
        "model": vendor.model,
        "max_requests_per_file": args.requests_per_file,
        "output_schema": SENTIMENT_SCHEMA,  # structured outputs: typed label and confidence columns
        "system_prompt": "Classify the review's sentiment.",
    }
    stack.trigger(DAG_ID, run_id, conf)
    run = stack.wait_for_run(DAG_ID, run_id)
    deferred = any(task == "batch.submit" and state == "deferred" for task, state in run["seen"])
    print(
        f"run {run_id}: {run['state']} in {time.monotonic() - started:.0f}s since `make demo` started "
        f"(batch waits deferred to the triggerer: {'yes' if deferred else 'not observed'})"
    )
    if run["state"] != "success":
        print(f"the run failed; task logs are in {stack.airflow_home / 'logs'}; UI: {stack.api_url}", file=sys.stderr)
        return 1
    _print_results(stack.duckdb_path, partition)
    area = stack.data_dir / "staging" / DAG_ID / partition
    manifest = json.loads((area / run_id / "inputs" / "manifest.json").read_text())
    totals, estimate = manifest["totals"], manifest.get("estimate") or {}
    print(f"requests sent: {totals['requests']:,}; reused from earlier runs (the request ledger): {totals['reused']:,}")
    load = stack.xcom(DAG_ID, run_id, "load") or {}
    print(f"cost at batch prices: estimated {usd(estimate.get('usd'))}, actual {usd(load.get('cost_usd'))}")
    print(f"\nAirflow UI:    {stack.api_url}/dags/{DAG_ID}/runs/{run_id}   (no login needed)")
    print(f"Emulator API:  {stack.emulator.url}{vendor.api}  ({args.vendor}'s batches)")
    print(f"Results:       {stack.duckdb_path}  table review_sentiment")
    print(f"Run report:    {area / run_id / 'report' / 'report.html'}  (+ report.png)")
    print(f"Run files:     {area / run_id}  (inputs, outputs, merged)")
    print(f"Ledger:        {area / '_ledger'}  (answers shared by every run of the partition)")
    print("Stop everything with `make stop`.")
    return 0


def _print_results(database: Path, partition: str) -> None:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "SELECT status, count(*) FROM review_sentiment WHERE partition_key = ? GROUP BY 1 ORDER BY 1", [partition]
        ).fetchall()
        total = sum(n for _, n in rows)
        print(
            f"\nloaded into DuckDB {database} table review_sentiment, partition {partition}: {total:,} rows "
            f"({', '.join(f'{n:,} {s}' for s, n in rows)})"
        )
        labels = con.execute(
            "SELECT label, count(*), avg(confidence) FROM review_sentiment WHERE partition_key = ? AND status = 'ok' "
            "GROUP BY 1 ORDER BY 2 DESC",
            [partition],
        ).fetchall()
        print("sentiment (typed columns label, confidence from the output schema):")
        for label, n, confidence in labels:
            print(f"  {label:<9} {n:>7,} rows   mean confidence {confidence:.2f}")
        sample = con.execute(
            "SELECT review_id, stars, left(text, 40), label, confidence, total_tokens FROM "
            "review_sentiment WHERE partition_key = ? AND status = 'ok' ORDER BY review_id LIMIT 3",
            [partition],
        ).fetchall()
        for review_id, stars, text, label, confidence, tokens in sample:
            print(f"  review {review_id} ({stars}*): {text!r}... -> {label} ({confidence:.2f}; {tokens} tokens)")


if __name__ == "__main__":
    sys.exit(main())
