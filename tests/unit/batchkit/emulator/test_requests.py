"""The emulator in-process (FastAPI's TestClient): every request has bounded memory and work and gets an answer
in OpenAI's error envelope, never a 500."""

import pytest
from fastapi.testclient import TestClient

from batchkit.emulator.app import create_app
from batchkit.emulator.checks import MAX_JSON_BYTES
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


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/v1/batches", "GET, POST"),
        ("PUT", "/v1/batches", "GET, POST"),
        ("PATCH", "/v1/batches", "GET, POST"),
        ("TRACE", "/v1/batches/batch_x", "GET"),
        ("POST", "/v1/batches/batch_x", "GET"),
        ("GET", "/v1/batches/batch_x/cancel", "POST"),
        ("POST", "/v1/files/file-x/content", "GET"),
        ("PUT", "/v1/files/file-x", "DELETE, GET"),
        ("OPTIONS", "/v1/files", "GET, POST"),
        ("DELETE", "/health", "GET"),
    ],
)
def test_a_method_a_path_does_not_support_is_a_405_naming_every_method_it_does(api, method, path, allow):
    response = api.request(method, path)
    assert response.status_code == 405 and error_of(response)["message"]
    assert response.headers["allow"] == allow


def test_head_is_a_405_without_a_body(api):
    response = api.head("/v1/batches")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST" and response.content == b""


def test_embedding_dimensions_are_bounded_on_the_synchronous_endpoint(api):
    body = {"model": "text-embedding-3-small", "input": "a", "dimensions": 2_000_000}
    response = api.post("/v1/embeddings", json=body)
    assert response.status_code == 400 and error_of(response)["param"] == "dimensions"


BOUNDARY = "b0undary"


def multipart(*parts: tuple[str, bytes, str | None], closing: bool = True) -> bytes:
    """A multipart/form-data body of (name, content, filename) parts."""
    chunks = []
    for name, content, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(chunks) + (f"--{BOUNDARY}--\r\n".encode() if closing else b"")


def post_upload(api, body: bytes):
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return api.post("/v1/files", content=body, headers=headers)


def stored_blobs(api) -> list:
    from batchkit.emulator.store import new_id

    return list(api.app.state.store.blob_path(new_id("file")).parent.iterdir())


GOOD = (("purpose", b"batch", None), ("file", b'{"a": 1}\n', "in.jsonl"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (multipart(*GOOD, closing=False), "without its closing boundary"),
        (multipart(*GOOD, ("file", b"more\n", "b.jsonl")), "more than one 'file' part"),
        (multipart(*GOOD, *[(f"f{i}", b"x", None) for i in range(100_000)]), "more than 16 form parts"),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\nX'.encode() + b"\x00" * 10,
            "malformed multipart body",
        ),
        (b"--" + BOUNDARY.encode() + b"\r\n" + b"H" * 20_000 + b": v\r\n\r\nx\r\n", "malformed multipart body"),
    ],
    ids=["no closing boundary", "two file parts", "100,000 fields", "cut short", "huge part header"],
)
def test_a_bad_upload_is_a_400_and_leaves_nothing_behind(api, body, message):
    response = post_upload(api, body)
    assert response.status_code == 400 and message in error_of(response)["message"], response.text
    assert stored_blobs(api) == [] and api.get("/v1/files").json()["data"] == []


def test_a_good_upload_is_stored_whole(api):
    response = post_upload(api, multipart(*GOOD))
    assert response.status_code == 200, response.text
    assert api.get(f"/v1/files/{response.json()['id']}/content").content == b'{"a": 1}\n'


def test_integral_floats_are_integers_as_json_schema_says(api):
    """Found by the fuzz test: ``"dimensions": 2971.0`` is an integer to JSON Schema (and OpenAI's document) but was
    refused with a 400."""
    body = {"model": "text-embedding-3-small", "input": ["a", [1.0, 2]], "dimensions": 8.0}
    response = api.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"][0]["embedding"]) == 8
    file_id = api.post("/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "batch"}).json()["id"]
    create = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    response = api.post(
        "/v1/batches", json={**create, "output_expires_after": {"anchor": "created_at", "seconds": 3600.0}}
    )
    assert response.status_code == 200 and response.json()["output_expires_after"]["seconds"] == 3600
    response = api.post(
        "/v1/batches", json={**create, "output_expires_after": {"anchor": "created_at", "seconds": True}}
    )
    assert response.status_code == 400
