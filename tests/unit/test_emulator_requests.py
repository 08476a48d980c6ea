"""The emulator in-process (FastAPI's TestClient): every request has bounded memory and work and gets an answer
in OpenAI's error envelope, never a 500."""

import pytest
from fastapi.testclient import TestClient

from batchkit.emulator.app import MAX_JSON_BYTES, create_app
from batchkit.emulator.config import EmulatorConfig


@pytest.fixture
def api(tmp_path):
    with TestClient(create_app(EmulatorConfig(data_dir=tmp_path / "emu"))) as client:
        yield client


def error_of(response) -> dict:
    assert set(response.json()) == {"error"}, response.text
    return response.json()["error"]


def test_deeply_nested_json_is_a_400(api):
    body = "[" * 100_000 + "]" * 100_000
    response = api.post("/v1/batches", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "could not parse" in error_of(response)["message"]


def test_a_json_body_over_the_limit_is_a_413_before_it_is_parsed(api):
    body = b'{"endpoint": "/v1/chat/completions", "x": "' + b"a" * (MAX_JSON_BYTES + 1) + b'"}'
    response = api.post("/v1/batches", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"


def test_unchecked_fields_are_not_stored(api):
    file_id = api.post("/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "batch"}).json()["id"]
    create = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    response = api.post("/v1/batches", json={**create, "output_expires_after": {"junk": "x" * 100_000}})
    assert response.status_code == 400 and error_of(response)["param"] == "output_expires_after"
    good = {"anchor": "created_at", "seconds": 3600}
    assert api.post("/v1/batches", json={**create, "output_expires_after": good}).json()["output_expires_after"] == good


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH"])
def test_a_method_a_route_does_not_support_is_a_405(api, method):
    response = api.request(method, "/v1/batches")
    assert response.status_code == 405 and error_of(response)["message"]


def test_embedding_dimensions_are_bounded_on_the_synchronous_endpoint(api):
    body = {"model": "text-embedding-3-small", "input": "a", "dimensions": 2_000_000}
    response = api.post("/v1/embeddings", json=body)
    assert response.status_code == 400 and error_of(response)["param"] == "dimensions"
