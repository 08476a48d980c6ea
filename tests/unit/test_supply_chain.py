"""What `make install` installs is exactly what was locked: every pin carries its hashes and sync demands them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_locked_package_is_pinned_with_a_hash():
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    pins = [e for e in entries if not e.startswith("#")]
    assert len(pins) > 100
    unhashed = [e.split()[0] for e in pins if "==" not in e.split()[0] or "--hash=sha256:" not in e]
    assert unhashed == []


def test_install_refuses_an_unhashed_package_and_upgrades_the_bootstrap_pip():
    makefile = (ROOT / "Makefile").read_text()
    assert "uv pip sync -q --require-hashes" in makefile
    assert "--generate-hashes" in makefile, "`make lock` keeps writing hashes"
    assert re.search(r"^pip==\d+", (ROOT / "requirements.lock").read_text(), re.M), "the venv's pip is the locked one"
