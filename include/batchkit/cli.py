"""The ``batchkit`` command line."""

import argparse
import sys
import time

from .cost.pricing import Estimate
from .emulator.command import add_emulator_command
from .errors import BatchkitError, InputError
from .split.options import cli_arguments, declared
from .split.split_config import SplitConfig
from .split.splitter import split
from .storage import CREDENTIALS_HELP, credential_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchkit", description="OpenAI Batch API tooling for Parquet partitions.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_split(commands)
    _add_sample(commands)
    add_emulator_command(commands)
    _add_load(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BatchkitError as exc:
        print(f"batchkit: error: {exc}", file=sys.stderr)
        return 2
    except credential_errors():
        print(f"batchkit: error: {CREDENTIALS_HELP}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("batchkit: interrupted; nothing was written", file=sys.stderr)
        return 130


def _add_split(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "split",
        help="split a Parquet partition into Batch API input files",
        description="Split a Parquet file, partition directory or glob into OpenAI Batch input files "
        "(DIR/batch-NNNNN.jsonl) and DIR/manifest.json. Rows whose prompt is null or empty are "
        "skipped and reported in the manifest.",
    )
    p.add_argument("source", help="a Parquet file, a directory of Parquet files (e.g. dt=2026-11-24/) or a glob")
    p.add_argument(
        "--out",
        required=True,
        help="output directory, local or s3://bucket/prefix (created; a previous split there is replaced)",
    )
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for flag, group, keywords in cli_arguments(SplitConfig):
        if group and group not in groups:
            groups[group] = p.add_mutually_exclusive_group(required=True)
        (groups[group] if group else p).add_argument(flag, **keywords)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=_run_split)


def _add_sample(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("sample", help="write a generated sample partition (for demos and benchmarks)")
    p.add_argument("out", help="partition directory to write, e.g. data/reviews/dt=2026-11-24")
    p.add_argument("--rows", type=int, default=1000, help="number of rows (default: %(default)s)")
    p.add_argument("--files", type=int, default=4, help="number of Parquet files (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    p.set_defaults(run=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    from .dev.sample import write_sample_partition

    paths = write_sample_partition(args.out, args.rows, args.files, args.seed)
    print(f"wrote {args.rows:,} rows in {len(paths)} file(s) to {args.out}")
    return 0


def _add_load(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "load",
        help="load a run's merged results into the warehouse on purpose (e.g. results a check refused)",
        description="Replace PARTITION's rows of TABLE with a merged result file (a run's "
        "merged/result.parquet). The DAG's load step refuses results over max_error_rate and leaves the table "
        "as it was; this loads them anyway, in one transaction.",
    )
    p.add_argument("results", help="merged result Parquet file, local or s3://")
    p.add_argument("--table", required=True, help="target table (table or schema.table)")
    p.add_argument("--partition", required=True, help="partition key whose rows are replaced")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--duckdb", help="DuckDB database file")
    target.add_argument("--postgres", help="PostgreSQL URI, e.g. postgresql://user@host:5432/dwh")
    p.add_argument("--run-id", default="manual-load", help="recorded in dag_run_id (default: %(default)s)")
    p.set_defaults(run=_run_load)


def _run_load(args: argparse.Namespace) -> int:
    import duckdb

    from .warehouse import without_passwords

    if args.duckdb:
        from .warehouse.duckdb_loader import load_duckdb as loader

        target, shown, cannot_open = args.duckdb, args.duckdb, (duckdb.Error, OSError)  # OSError: its folder
    else:
        import adbc_driver_manager  # with the postgres extra, as the loader

        from .warehouse.postgres_loader import load_postgres as loader

        target, shown, cannot_open = args.postgres, without_passwords(args.postgres), (adbc_driver_manager.Error,)
    try:
        rows = loader(target, args.table, [args.results], args.partition, args.run_id)
    except cannot_open as exc:  # the warehouse cannot be opened or reached
        text = str(exc).strip()
        first_line = without_passwords(text.splitlines()[0]) if text else type(exc).__name__
        raise InputError(f"cannot load into {shown}: {first_line}; nothing was changed") from None
    print(f"partition {args.partition} of {args.table} now holds {rows:,} rows from {args.results}")
    return 0


def _run_split(args: argparse.Namespace) -> int:
    config = SplitConfig(**{each.name: getattr(args, each.name) for each, spec in declared(SplitConfig) if spec.flag})
    started = time.monotonic()
    last = [started]

    def progress(rows: int, files: int) -> None:
        now = time.monotonic()
        if not args.quiet and now - last[0] >= 2:
            last[0] = now
            print(
                f"  {rows:,} rows read, {files} file(s) started ({rows / (now - started):,.0f} rows/s)", file=sys.stderr
            )

    manifest = split(args.source, args.out, config, progress)
    totals = manifest.totals
    print(
        f"wrote {totals['files']} batch file(s) with {totals['requests']:,} requests "
        f"({totals['bytes'] / 1e6:,.1f} MB, ~{totals['estimated_tokens']:,} tokens) to {args.out} "
        f"in {time.monotonic() - started:.1f}s"
    )
    print(f"estimated cost: {Estimate(**manifest.estimate).describe()}")
    for reason, count in (manifest.skipped.reasons or {manifest.skipped.reason: totals["rows_skipped"]}).items():
        if count:
            print(f"skipped {count:,} row(s): {reason} (examples in manifest.json)")
    if not totals["files"]:
        print("the source has no rows to submit: no batch files written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
