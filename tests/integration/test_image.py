"""The container image, without a Docker engine: the Dockerfile is hadolint clean, and the commands its
components run work in the same layout for an unprivileged user (``nobody`` here, with gid 0 as the image's
``airflow`` user, uid 50000), not root: a read-only
AIRFLOW_HOME holding the DAGs, the config, logs and metadata DB where a deployment mounts writable volumes, and
the data paths the Dockerfile sets (rebased under a scratch root)."""

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_UID, AIRFLOW_GID = pwd.getpwnam("nobody").pw_uid, 0  # Airflow refuses a uid without a passwd entry


def dockerfile_env() -> dict[str, str]:
    """The ``ENV`` settings of the Dockerfile (``KEY=value`` form, continuation lines joined)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            found |= dict(re.findall(r"(\w+)=(\S+)", line))
    return found


def as_airflow_user(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    command = ["setpriv", f"--reuid={AIRFLOW_UID}", f"--regid={AIRFLOW_GID}", "--clear-groups", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def scratch():
    """A scratch root the unprivileged user can reach (pytest's own temp root is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="image-layout-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_images_commands_run_as_its_user_with_a_read_only_airflow_home(scratch):
    settings = dockerfile_env()
    assert all(
        settings[k].startswith("/") for k in ("OPENAI_BATCH_DATA", "OPENAI_BATCH_STAGING", "OPENAI_BATCH_DUCKDB")
    )
    root = scratch
    home = root / "opt" / "airflow"  # as built: DAGs copied in, owned by root here so nothing can write to it
    shutil.copytree(REPO / "dags", home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    volumes = root / "volumes"  # what a deployment mounts writable: config, logs, the SQLite DB, the data
    for path in (root, volumes, root / "home" / "airflow"):
        path.mkdir(parents=True, exist_ok=True)
    os.chown(root / "home" / "airflow", AIRFLOW_UID, AIRFLOW_GID)
    home.chmod(0o555)

    data = {k: str(volumes) + v for k, v in settings.items() if k.startswith("OPENAI_BATCH_")}
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(root / "home" / "airflow"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(volumes / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(volumes / "logs"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{volumes / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": settings["AIRFLOW__CORE__LOAD_EXAMPLES"],
        **data,
    }
    Path(data["OPENAI_BATCH_STAGING"]).mkdir(parents=True)  # the Dockerfile's RUN mkdir (run as the user)
    subprocess.run(["chown", "-R", f"{AIRFLOW_UID}:{AIRFLOW_GID}", str(volumes)], check=True)

    for command in (["airflow", "db", "migrate"], ["airflow", "dags", "reserialize"]):
        done = as_airflow_user(*command, env=env, cwd=root / "home" / "airflow")
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    listed = as_airflow_user("airflow", "dags", "list", "-o", "json", env=env, cwd=root / "home" / "airflow")
    table = listed.stdout[listed.stdout.index("[{") :]  # after the log lines
    assert [d["dag_id"] for d in json.loads(table)] == ["openai_batch_inference"], listed.stderr[-2000:]
    providers = as_airflow_user("airflow", "providers", "list", "-o", "json", env=env, cwd=root / "home" / "airflow")
    assert "airflow-provider-openai-batch" in providers.stdout
    assert not any(home.rglob("*.cfg")) and not (home / "logs").exists(), "nothing was written into AIRFLOW_HOME"
