"""A pipeline's deployment settings (``pipeline.batch_pipeline``): one frozen value, each setting declared once
with the environment variable ``PipelineSettings.from_env`` reads it from and its default there.

Constructed directly, a setting is what you pass, else its plain default (allow-lists: ``None``, no restriction).
``from_env`` is how the shipped DAG reads them: what you pass wins, else the environment of the host parsing the
DAG file, else the deployment default; ``staging_root`` and ``warehouse`` become templates read when each task
runs, from an Airflow Variable (``openai_batch_staging``, ``openai_batch_duckdb``) when one is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import timedelta
from typing import Any

from batchkit.memory import DEFAULT_TASK_MEMORY_MB
from openai_batch.notify import NotifySettings
from openai_batch.policy import names, run_time
from openai_batch.retention import DEFAULT as VENDOR_LIFETIME
from openai_batch.retention import Lifetimes, check_lifetime

DEFAULT_TABLE = "review_sentiment"
PRICES = "{{ var.json.get('openai_batch_prices', {}) }}"  # overrides of batchkit.cost.pricing's batch prices (USD/1M)
QUEUE_WAIT, RETRY_DELAY, RETENTION = timedelta(minutes=10), timedelta(seconds=30), timedelta(days=7)

Fallback = str | Callable[[Mapping[str, Any]], str] | None


def env(
    name: str,
    default: Any = MISSING,
    *,
    parse: Callable[[str], Any] = str,
    fallback: Fallback = None,
    variable: str = "",
) -> Any:
    """A setting that ``from_env`` reads from the environment variable ``name`` with ``parse``; when it is unset,
    from ``fallback`` (a raw value, or a function of the settings read before it), else ``default``. With
    ``variable``, the value becomes a template read at run time: that Airflow Variable, else the value."""
    spec = {"env": name, "parse": parse, "fallback": fallback, "variable": variable}
    return field(default=default, metadata=spec)


def _seconds(text: str) -> timedelta:
    return timedelta(seconds=float(text))


def _days(text: str) -> timedelta:
    return timedelta(days=float(text))


def _lifetime(text: str) -> timedelta | None:
    """Days, or ``none`` (the vendor's own default)."""
    return None if text.strip().lower() in ("", "none") else _days(text)


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _names(text: str) -> tuple[str, ...]:
    return tuple(names(text))


def _airflow_data(_: Mapping[str, Any]) -> str:
    return os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "data")


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Where a pipeline keeps its files and loads its results, how much runs at once, how it waits and retries,
    and what its Params may reach (README "Settings")."""

    data_root: str = env("OPENAI_BATCH_DATA", "", fallback=_airflow_data)  # the sample data; defaults below
    staging_root: str = env(  # a directory or s3://bucket/prefix (README "Staging")
        "OPENAI_BATCH_STAGING", fallback=lambda s: f"{s['data_root']}/staging", variable="openai_batch_staging"
    )
    warehouse: str = env(  # the DuckDB file, when the load names no warehouse connection
        "OPENAI_BATCH_DUCKDB",
        "",
        fallback=lambda s: f"{s['data_root']}/warehouse.duckdb",
        variable="openai_batch_duckdb",
    )
    storage_conn_id: str = env("OPENAI_BATCH_STORAGE_CONN_ID", "aws_default")  # for s3:// source and staging
    conn_id: str = env("OPENAI_BATCH_CONN_ID", "openai_default")  # the batch vendor's connection (the Param's default)
    max_parallel_batches: int = env("OPENAI_BATCH_MAX_PARALLEL", 4, parse=int)  # batches in flight per run
    max_parallel_collects: int | None = env(  # None: as many as batches
        "OPENAI_BATCH_MAX_PARALLEL_COLLECT", None, parse=int, fallback=lambda s: str(s["max_parallel_batches"])
    )
    poll_seconds: float = env("OPENAI_BATCH_POLL_SECONDS", 60.0, parse=float)
    queue_wait: timedelta = env("OPENAI_BATCH_QUEUE_WAIT_SECONDS", QUEUE_WAIT, parse=_seconds)
    retries: int = env("OPENAI_BATCH_TASK_RETRIES", 2, parse=int)
    retry_delay: timedelta = env("OPENAI_BATCH_RETRY_DELAY_SECONDS", RETRY_DELAY, parse=_seconds)
    retention: timedelta = env("OPENAI_BATCH_STAGING_RETENTION_DAYS", RETENTION, parse=_days)
    task_memory_mb: int = env("OPENAI_BATCH_TASK_MEMORY_MB", DEFAULT_TASK_MEMORY_MB, parse=int)  # the load's
    pool: str = env("OPENAI_BATCH_POOL", "default_pool")  # the submit tasks' (e.g. one counting deferred tasks)
    # What stays at the vendor, and how long (README "Retention at the vendor"): input files' expires_after, batches'
    # output_expires_after (None: the vendor's default), and whether a recorded batch's files are kept
    file_expiry: timedelta | None = env("OPENAI_BATCH_FILE_EXPIRY_DAYS", VENDOR_LIFETIME, parse=_lifetime)
    output_expiry: timedelta | None = env("OPENAI_BATCH_OUTPUT_EXPIRY_DAYS", VENDOR_LIFETIME, parse=_lifetime)
    keep_vendor_files: bool = env("OPENAI_BATCH_KEEP_VENDOR_FILES", False, parse=_flag)
    prices: str | dict[str, Any] = PRICES
    # What the Params may reach (README "Security"); None: anything
    allowed_sources: tuple[str, ...] | None = env(
        "OPENAI_BATCH_ALLOWED_SOURCES", None, parse=_names, fallback=lambda s: s["data_root"]
    )
    allowed_warehouse_conns: tuple[str, ...] | None = env(  # "" (DuckDB) is always allowed
        "OPENAI_BATCH_ALLOWED_WAREHOUSE_CONNS", None, parse=_names, fallback=""
    )
    allowed_tables: tuple[str, ...] | None = env(
        "OPENAI_BATCH_ALLOWED_TABLES", None, parse=_names, fallback=DEFAULT_TABLE
    )
    allowed_api_conns: tuple[str, ...] | None = env(  # the connections the conn_id Param may name
        "OPENAI_BATCH_ALLOWED_API_CONNS", None, parse=_names, fallback=lambda s: s["conn_id"]
    )
    # The shipped DAG's own settings (a DAG of yours may use them too)
    schedule: str = env("OPENAI_BATCH_SCHEDULE", "@daily")  # cron or preset; "none": manual and backfill runs
    partition_format: str = env("OPENAI_BATCH_PARTITION_FORMAT", "%Y-%m-%d")  # e.g. %Y-%m-%dT%H for hourly
    notify: NotifySettings = field(default=NotifySettings(), metadata={"read": NotifySettings.from_env})

    def __post_init__(self) -> None:
        check_lifetime("OPENAI_BATCH_FILE_EXPIRY_DAYS (file_expiry)", self.file_expiry)
        check_lifetime("OPENAI_BATCH_OUTPUT_EXPIRY_DAYS (output_expiry)", self.output_expiry)

    @classmethod
    def from_env(cls, **given: Any) -> PipelineSettings:
        """Each setting from ``given``, else its environment variable, else its deployment default."""
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(given) - known):
            raise TypeError(f"unknown pipeline settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for each in fields(cls):
            values[each.name] = given[each.name] if each.name in given else _read(each, values)
        return cls(**values)

    @property
    def collects_in_flight(self) -> int:
        return self.max_parallel_collects or self.max_parallel_batches

    @property
    def lifetimes(self) -> Lifetimes:
        return Lifetimes(self.file_expiry, self.output_expiry, self.keep_vendor_files)


def _read(setting: Field, before: Mapping[str, Any]) -> Any:
    """One setting from the environment (see ``env``); ``before``: the settings read so far."""
    spec = setting.metadata
    if "read" in spec:
        return spec["read"]()
    if "env" not in spec:
        return setting.default
    raw, fallback = os.environ.get(spec["env"]), spec["fallback"]
    if raw is None and fallback is not None:
        raw = fallback(before) if callable(fallback) else fallback
    value = setting.default if raw is None else spec["parse"](raw)
    return run_time(spec["variable"], value) if spec["variable"] else value
