"""Every module of the Airflow layer imports on its own, first in a fresh interpreter (no import cycle)."""

import pkgutil
import subprocess
import sys

import openai_batch


def test_each_module_imports_first_in_a_fresh_interpreter():
    names = [m.name for m in pkgutil.walk_packages(openai_batch.__path__, "openai_batch.")]
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    for loaded in [m for m in sys.modules if m.startswith('openai_batch')]:\n        del sys.modules[loaded]\n    importlib.import_module(name)\n"
    assert "openai_batch.attempts" in names
    result = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
