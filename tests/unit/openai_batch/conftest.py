"""Plugin fixtures: an ``openai_test`` Airflow connection pointing at a real emulator process."""

import json

import pytest


@pytest.fixture
def conn(emulator, monkeypatch):
    """Start an emulator with the given args and point the ``openai_test`` connection at it."""

    def make(*args: str):
        emu = emulator(*args)
        monkeypatch.setenv(
            "AIRFLOW_CONN_OPENAI_TEST", json.dumps({"conn_type": "openai", "password": "unused", "host": emu.base_url})
        )
        return emu

    return make
