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


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


@pytest.fixture
def runtime(scratch) -> Path:
    """This venv's packages and the project, installed in ``scratch`` as the image has them, for the user to run
    (a clone may sit in a folder only its owner can enter): the packages hard-linked, the commands' ``#!`` lines
    pointed at the copy, the project built and installed (not editable) from a copy of what the Dockerfile copies.
    The bin folder."""
    venv, prefix = scratch / "venv", Path(sys.prefix)
    shutil.copytree(prefix / "lib", venv / "lib", symlinks=True, copy_function=link_or_copy)
    shutil.copy2(prefix / "pyvenv.cfg", venv)  # home: the base interpreter
    (venv / "bin").mkdir()
    for entry in (prefix / "bin").iterdir():
        target = venv / "bin" / entry.name
        if entry.is_symlink():
            target.symlink_to(os.readlink(entry))
        elif (script := entry.read_bytes()).startswith(b"#!"):
            python = str(prefix / "bin" / "python").encode()
            target.write_bytes(script.replace(python, str(venv / "bin" / "python").encode(), 1))
            target.chmod(entry.stat().st_mode)
        else:
            link_or_copy(str(entry), str(target))
    package = scratch / "pkg"
    package.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, package)
    for name in ("include", "plugins"):
        shutil.copytree(REPO / name, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    uv = [str(prefix / "bin" / "uv"), "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    subprocess.run([*uv, "--no-deps", "--no-build-isolation", "--reinstall", str(package)], check=True)
    shutil.rmtree(package)
    return venv / "bin"


def test_the_images_commands_run_as_its_user_with_a_read_only_airflow_home(scratch, runtime):
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
        "PATH": f"{runtime}:/usr/bin:/bin",
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
