"""The local stack's Airflow commands."""

import subprocess
import sys

from batchkit.dev.devstack import TASK_LIBRARIES, _airflow_command


def test_components_that_fork_tasks_start_with_the_task_libraries_and_still_run_the_cli():
    assert _airflow_command("api-server") == ["-m", "airflow"]
    for component in ("scheduler", "celery worker --concurrency 2"):
        assert TASK_LIBRARIES in _airflow_command(component)[1]
    done = subprocess.run(
        [sys.executable, *_airflow_command("scheduler"), "version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()[:1].isdigit(), done.stdout  # the CLI ran: Airflow's version, e.g. 3.3.2
