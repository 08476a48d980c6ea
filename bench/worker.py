"""Benchmarks measure each approach in a fresh process (its own peak RSS): run the script itself as a worker."""

import json
import subprocess
import sys
from typing import Any


def run_worker(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``script --worker ARGS`` in a new interpreter; its last stdout line is a JSON object of figures."""
    done = subprocess.run(
        [sys.executable, script, "--worker", *args], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
