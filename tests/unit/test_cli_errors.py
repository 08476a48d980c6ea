"""The CLI answers bad input with one line and exit 2, never a traceback."""

import subprocess
import sys

import pytest


def batchkit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batchkit.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "emulator.internal"])
def test_the_emulator_refuses_a_reachable_address_without_a_key(host, tmp_path):
    done = batchkit("emulator", "--host", host, "--port", "0", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--host {host} is reachable from other machines" in done.stderr
    assert not any(tmp_path.iterdir()), "nothing was started or written"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--api-key", "sk-x"), "--api-key puts the key in the process list"),
        (("--api-key-file", "/nonexistent/key"), "--api-key-file /nonexistent/key: No such file"),
        (("--api-key-file", "/dev/null"), "--api-key-file /dev/null is empty"),
    ],
    ids=["key in argv", "missing key file", "empty key file"],
)
def test_the_emulator_key_never_comes_from_argv(args, message, tmp_path):
    done = batchkit("emulator", "--port", "0", "--data-dir", str(tmp_path), *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert message in done.stderr and "sk-x" not in done.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"temperature": NaN}', "NaN is not JSON"),
        ('{"x": Infinity}', "Infinity is not JSON"),
        ('{"a": ' * 5_000 + "1" + "}" * 5_000, "nested too deeply"),
        ("[1]", "must be a JSON object"),
    ],
    ids=["NaN", "Infinity", "deeply nested", "not an object"],
)
def test_body_json_must_be_strict_json(tmp_path, body, message):
    done = batchkit("split", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model", "m", "--body-json", body)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert message in done.stderr
