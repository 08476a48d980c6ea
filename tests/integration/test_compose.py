"""docker-compose.yaml without a Docker engine: it parses, every service's command and health check exist in the
installed Airflow/Celery/batchkit CLIs, and the settings the components must share agree."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHARED = (  # every Airflow component must see the same values
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW_CONN_OPENAI_DEFAULT",
)


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]


def airflow_services(services: dict[str, dict]) -> dict[str, dict]:
    return {name: s for name, s in services.items() if s.get("command", [""])[0] == "airflow" or name == "airflow-init"}


def test_the_stack_has_the_celery_topology(services):
    commands = [" ".join(s["command"]) for s in services.values() if "command" in s]
    assert sum(c == "airflow triggerer" for c in commands) == 2
    assert sum(c.startswith("airflow celery worker") for c in commands) == 2
    for needed in ("airflow api-server", "airflow scheduler", "airflow dag-processor"):
        assert needed in commands
    assert {"postgres", "redis", "emulator", "airflow-init"} <= set(services)


def test_dependencies_exist_and_wait_for_health(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if name != "airflow-init":
            assert "healthcheck" in service, f"{name} has no health check"
        for needed, how in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits for {needed}, which has no health check"
    init = services["airflow-init"]["command"][-1]
    assert "airflow db migrate" in init and "--include-deferred" in init  # the pool counts deferred batches


def test_airflow_components_share_their_settings_and_reach_real_services(services):
    components = airflow_services(services)
    envs = [s["environment"] for s in components.values()]
    for key in SHARED:
        assert len({json.dumps(env.get(key)) for env in envs}) == 1 and envs[0].get(key), key
    env = envs[0]
    hosts = {
        urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname: "postgres",
        urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname: "redis",
        urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).hostname: "airflow-apiserver",
    }
    assert all(host == service and service in services for host, service in hosts.items()), hosts
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    default = env["AIRFLOW_CONN_OPENAI_DEFAULT"].split(":-", 1)[1].rstrip("}")  # ${VAR:-default}
    emulator = urlsplit(json.loads(default + "}")["host"])
    command = services["emulator"]["command"]
    assert emulator.hostname == "emulator" and str(emulator.port) == command[command.index("--port") + 1]
    assert json.loads(default + "}")["password"] == services["emulator"]["environment"]["BATCHKIT_EMULATOR_API_KEY"]


def test_every_command_and_health_check_exists(services):
    """Airflow's own CLI parser (with the CeleryExecutor configured, as in the stack) and batchkit's accept each
    command line; nothing is run."""
    lines = []
    for service in services.values():
        command = service.get("command", [])
        if command and command[0] == "bash":
            lines += [shlex.split(part) for part in command[-1].split("&&")]
        elif command:
            lines.append(command)
        test = (service.get("healthcheck") or {}).get("test", [])
        if test and test[0] == "CMD-SHELL":
            lines.append(shlex.split(test[1].replace("$${HOSTNAME}", "host")))
    airflow = [line[1:] for line in lines if line[0] == "airflow"]
    batchkit = [line[1:] for line in lines if line[0] == "batchkit"]
    celery = [line for line in lines if line[0] == "celery"]
    assert airflow and batchkit and celery
    check = (
        "import sys, json\n"
        "from airflow.cli.cli_parser import get_parser\n"
        "from batchkit.cli import build_parser\n"
        "for args in json.loads(sys.argv[1]): get_parser().parse_args(args)\n"
        "for args in json.loads(sys.argv[2]): build_parser().parse_args(args)\n"
        "from airflow.providers.celery.executors.celery_executor import app\n"
        "print(app.main)\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    done = subprocess.run(
        [sys.executable, "-c", check, json.dumps(airflow), json.dumps(batchkit)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    app = celery[0][celery[0].index("--app") + 1]
    assert app == "airflow.providers.celery.executors.celery_executor.app"
