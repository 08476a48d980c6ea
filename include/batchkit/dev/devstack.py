"""A local Airflow stack for the demo and the end-to-end tests: the emulator plus real Airflow components.

Runs ``airflow db migrate`` then ``api-server``, ``scheduler``, ``dag-processor`` and ``triggerer`` as
separate processes, each in its own process group, all logging under ``<root>/logs``. By default LocalExecutor
and SQLite; with ``executor="CeleryExecutor"`` a PostgreSQL metadata database and a Redis broker, workers added
with ``add("celery worker", ...)``. Nothing here imports Airflow: it drives the ``airflow`` command and the API.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..emulator.launcher import EmulatorProcess, free_port, start_emulator
from .airflow_client import AirflowClient

REPO = Path(__file__).resolve().parents[3]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Imported by the components that fork task processes, before they fork: each task then starts with them instead of
# importing them again, about 1 CPU-second less per task (half of what a task costs here). None opens a connection
# at import; the only threads they start (OpenBLAS's pool, jemalloc's background thread) are fork-aware.
TASK_LIBRARIES = "numpy, pyarrow.parquet, pyarrow.compute, openai, duckdb, orjson, jsonschema, tiktoken"


@dataclass
class Stack(AirflowClient):
    """Paths, ports and processes of one local stack rooted at ``root``."""

    root: Path
    api_port: int = field(default_factory=free_port)
    emulator_port: int | None = None
    emulator_args: tuple[str, ...] = ()
    poll_seconds: float = 5
    schedule: str = "none"  # the DAG's schedule here: "none" runs only what we trigger (backfills need one)
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. S3 staging settings and connections
    executor: str = "LocalExecutor"
    metadata_db: str = ""  # SQLAlchemy URL of the metadata database; empty: SQLite in AIRFLOW_HOME
    broker_url: str = ""  # the Celery broker (CeleryExecutor)
    emulator: EmulatorProcess | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    specs: dict[str, tuple[str, dict[str, str], Path | None]] = field(default_factory=dict)  # name: how to start

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        """Environment of every Airflow component; secrets are pinned so components trust each other."""
        assert self.emulator, "start the emulator first"
        keys = _stable_keys(self.root / "keys.json")
        return {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
            "AIRFLOW__API__SECRET_KEY": keys["secret"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",  # each task's next step starts sooner
            "AIRFLOW_CONN_OPENAI_DEFAULT": json.dumps(
                {"conn_type": "openai", "password": "emulator", "host": self.emulator.base_url}
            ),
            "OPENAI_BATCH_DATA": str(self.data_dir),
            "OPENAI_BATCH_POLL_SECONDS": str(self.poll_seconds),
            "OPENAI_BATCH_SCHEDULE": self.schedule,
            # A healthy run needs no retry (a retry would hide a defect); tests that kill components set their own
            "OPENAI_BATCH_RETRY_DELAY_SECONDS": "3",
            "OPENAI_BATCH_TASK_RETRIES": "0",
            **self._database_env(),
            **self.extra_env,
        }

    def _database_env(self) -> dict[str, str]:
        if not self.metadata_db:
            return {}
        database = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_db}
        if self.executor != "CeleryExecutor":
            return database
        return {
            **database,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_db}",
        }

    def start(self, progress: Any = print) -> None:
        """Start the emulator and Airflow; return when the API answers and the DAG is parsed."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        progress(f"starting the OpenAI Batch API emulator (state in {self.root / 'emulator'})")
        self.emulator = start_emulator(self.root / "emulator", *self.emulator_args, port=self.emulator_port)
        self._write_pids()
        progress("migrating the Airflow metadata database (SQLite)")
        self._migrate()
        for component in (c for c in COMPONENTS if c != "scheduler"):
            self._spawn(component)
        self._write_pids()
        progress(f"starting Airflow {', '.join(COMPONENTS)} (logs in {self.root / 'logs'})")
        self._wait("/api/v2/monitor/health", 120, "the API server")
        # The scheduler last: a run due at once (a catch-up) would start tasks whose supervisors find no API server
        # yet; under load one was SIGKILLed while its start call was still being retried.
        self._spawn("scheduler")
        self._write_pids()

    def _migrate(self) -> None:
        """``airflow db migrate``, once per Airflow version on this machine: a new stack copies the migrated
        empty database (seconds saved per stack); an existing one is migrated in place."""
        from importlib.metadata import version

        database = self.airflow_home / "airflow.db"
        template = Path(tempfile.gettempdir()) / f"batchkit-airflow-{version('apache-airflow')}-empty.db"
        if not self.metadata_db and not database.exists() and template.exists():
            self.airflow_home.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, database)
            return
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=self.env(), capture_output=True, text=True
        )
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-2000:]}")
        if not self.metadata_db and not template.exists():
            partial = template.with_name(f"{template.name}.{os.getpid()}.part")
            shutil.copyfile(database, partial)
            os.replace(partial, template)

    def kill(self, component: str) -> None:
        """SIGKILL a component's whole process group, as a crash would (``emulator`` included)."""
        process = self.emulator.process if component == "emulator" else self.processes[component]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self, component: str) -> None:
        """Start a killed component again with the same settings and state."""
        if component == "emulator":
            self.emulator = start_emulator(self.root / "emulator", *self.emulator_args, port=self.emulator.port)
        else:
            self._spawn(*self.specs.get(component, (component, {}, None)), name=component)
        self._write_pids()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        self._wait(f"/api/v2/dags/{dag_id}", timeout, f"DAG {dag_id} to be parsed")
        errors = self.api("GET", "/api/v2/importErrors").json().get("import_errors", [])
        if errors:
            raise RuntimeError(f"DAG import errors: {errors}")
        self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)  # a paused component must be able to stop
        _stop_groups([process.pid for process in self.processes.values()])
        self.processes.clear()
        if self.emulator:
            self.emulator.stop()
        (self.root / "pids.json").unlink(missing_ok=True)

    def _wait(self, path: str, timeout: float, what: str) -> None:
        """Until a GET of ``path`` answers 200 (``what`` it means, for the error), failing fast if a component died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"Airflow {dead[0]} exited; see {self.root / 'logs' / (dead[0] + '.log')}")
            response = self.poll(path)  # None while the API server is not listening yet
            if response is not None and response.status_code == 200:
                return
            time.sleep(1)
        raise TimeoutError(f"waited {timeout:.0f}s for {what}; see the logs in {self.root / 'logs'}")

    def add(self, component: str, name: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        """Start one more Airflow component under ``name``: a second ``triggerer``, or ``celery worker --concurrency
        2`` with its own ``env`` and working directory ``cwd`` (as on another host)."""
        self._spawn(component, env or {}, cwd, name=name)
        self._write_pids()

    def pause(self, name: str) -> None:
        """SIGSTOP a component's process group, as a host that stops answering would."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def _spawn(
        self, component: str, env: dict[str, str] | None = None, cwd: Path | None = None, name: str | None = None
    ) -> None:
        """Start one Airflow component (a command line after ``airflow``) in its own process group, logging to
        ``<root>/logs/<name>.log``."""
        name = name or component
        self.specs[name] = (component, env or {}, cwd)
        log = (self.root / "logs" / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, *_airflow_command(component), *component.split()],
            env={**self.env(), **(env or {})},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _write_pids(self) -> None:
        pids = {name: p.pid for name, p in self.processes.items()}
        if self.emulator:
            pids["emulator"] = self.emulator.process.pid
        (self.root / "pids.json").write_text(json.dumps(pids))


def _airflow_command(component: str) -> list[str]:
    """How to run ``airflow <component>``: the components that fork task processes (the scheduler, whose
    LocalExecutor workers run tasks, and Celery workers) with the task libraries already imported."""
    if component != "scheduler" and not component.startswith("celery worker"):
        return ["-m", "airflow"]
    return ["-c", f"import {TASK_LIBRARIES}; import runpy; runpy.run_module('airflow', run_name='__main__')"]


def stop_recorded(root: Path) -> list[str]:
    """Stop a stack started by another process (``make stop``), from its pid file."""
    pid_file = root / "pids.json"
    if not pid_file.exists():
        return []
    pids = json.loads(pid_file.read_text())
    _stop_groups(list(pids.values()))
    pid_file.unlink()
    return list(pids)


def _stop_groups(pids: list[int], timeout: float = 20) -> None:
    """SIGTERM every process group at once (the scheduler's workers included), wait for all of them together,
    then SIGKILL what is left."""
    alive = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            alive.append(pid)
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                alive.remove(pid)
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _stable_keys(path: Path) -> dict[str, str]:
    if path.exists():
        return json.loads(path.read_text())
    import base64
    import secrets

    keys = {
        "fernet": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "secret": secrets.token_hex(16),
        "jwt": secrets.token_hex(32),
    }
    path.write_text(json.dumps(keys))
    path.chmod(0o600)
    return keys
