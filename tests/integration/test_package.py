"""The built wheel installs into a fresh Airflow venv (no repo on the path), registers as a provider and runs the
project's DAG file copied outside the repo."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def fresh_airflow(tmp_path_factory) -> tuple[Path, Path]:
    """A new venv holding Airflow (the lock's versions) and the wheel with its s3/postgres extras; nothing else."""
    work = tmp_path_factory.mktemp("package")
    run(UV, "build", "--wheel", "-q", "-o", work / "dist", REPO, cwd=work)
    (wheel,) = (work / "dist").glob("airflow_provider_openai_batch-*.whl")
    run(UV, "venv", "-q", "--python", sys.executable, work / "venv", cwd=work)
    python = work / "venv" / "bin" / "python"
    lock = REPO / "requirements.lock"  # as constraints: the versions this project is tested with
    run(UV, "pip", "install", "-q", "--python", python, "-c", lock, f"{wheel}[s3,postgres]", cwd=work)
    return work, python


def airflow_env(work: Path) -> dict[str, str]:
    path = f"{work / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    return {**keep, "PATH": path, "AIRFLOW_HOME": str(work / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def test_the_wheel_declares_its_dependencies_without_pinning_airflow(fresh_airflow):
    work, python = fresh_airflow
    requires = run(
        python, "-c", "import importlib.metadata as m; print(m.requires('airflow-provider-openai-batch'))", cwd=work
    )
    assert "apache-airflow>=3" in requires and "apache-airflow==" not in requires
    assert 'extra == "s3"' in requires and 'extra == "emulator"' in requires


def test_airflow_lists_the_provider(fresh_airflow):
    work, _ = fresh_airflow
    listed = json.loads(run("airflow", "providers", "list", "-o", "json", cwd=work, env=airflow_env(work)))
    ours = [p for p in listed if p["package_name"] == "airflow-provider-openai-batch"]
    assert ours and ours[0]["version"] == "0.2.0", listed


def test_the_project_dag_parses_from_outside_the_repo(fresh_airflow):
    work, python = fresh_airflow
    dags = work / "dags"
    dags.mkdir()
    (dags / "inference.py").write_bytes((REPO / "dags" / "openai_batch_inference.py").read_bytes())
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(dags)!r})\n"
        "import openai_batch, batchkit\n"
        "print(bag.import_errors, sorted(bag.dags), openai_batch.__file__, batchkit.__file__)\n"
    )
    out = run(python, "-c", script, cwd=work, env=airflow_env(work)).strip().splitlines()[-1]  # after the logs
    assert out.startswith("{} ['openai_batch_inference']"), out
    assert "site-packages/openai_batch" in out and "site-packages/batchkit" in out, out  # the wheel, not the repo


def test_the_wheel_holds_no_dev_code_and_every_module_imports_from_it(fresh_airflow):
    work, python = fresh_airflow
    (wheel,) = (work / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("batchkit/split/") for n in names), names[:20]
    assert not [n for n in names if n.startswith("batchkit/dev/")], "the dev stack, demo and sample stay in the repo"
    script = (
        "import importlib, pkgutil, batchkit, openai_batch\n"
        "for package in (batchkit, openai_batch):\n"
        "    for m in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if not m.name.startswith(('batchkit.emulator', 'openai_batch.notify')):\n"
        "            importlib.import_module(m.name)\n"
        "print('imported')\n"
    )
    assert run(python, "-c", script, cwd=work, env=airflow_env(work)).strip().endswith("imported")
