"""File lifetimes in-process: ``expires_after`` as the openai SDK encodes it (and as one JSON field), checked
against the API's documented range; the 30-day default of batch input files; an expired file gone with its bytes."""

import json

import pytest
from fastapi.testclient import TestClient

from batchkit.emulator.app import create_app
from batchkit.emulator.config import EmulatorConfig
from batchkit.emulator.lifetimes import BATCH_INPUT_SECONDS, form_expiry
from batchkit.emulator.store import Store, new_id


@pytest.fixture
def api(tmp_path):
    with TestClient(create_app(EmulatorConfig(data_dir=tmp_path / "emu"))) as client:
        yield client


def upload(api, purpose: str = "batch", **fields: str):
    return api.post("/v1/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": purpose, **fields})


def lifetime(answer) -> int | None:
    found = answer.json()
    return None if found["expires_at"] is None else found["expires_at"] - found["created_at"]


def test_expires_after_sets_expires_at_and_batch_files_default_to_30_days(api):
    bracketed = {"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    assert lifetime(upload(api, **bracketed)) == 3600
    assert (
        lifetime(upload(api, "user_data", expires_after=json.dumps({"anchor": "created_at", "seconds": 7200}))) == 7200
    )
    assert lifetime(upload(api)) == BATCH_INPUT_SECONDS == 30 * 24 * 3600
    assert lifetime(upload(api, "user_data")) is None  # other purposes live until deleted
    listed = api.get("/v1/files").json()["data"]
    assert sorted(f["expires_at"] is None for f in listed) == [False, False, False, True]


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        (
            {"expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
            "expires_after.seconds",
            "integer_below_min_value",
        ),
        (
            {"expires_after[anchor]": "created_at", "expires_after[seconds]": "2592001"},
            "expires_after.seconds",
            "integer_above_max_value",
        ),
        (
            {"expires_after[anchor]": "created_at", "expires_after[seconds]": "1h"},
            "expires_after.seconds",
            "invalid_type",
        ),
        ({"expires_after[anchor]": "uploaded_at", "expires_after[seconds]": "3600"}, "expires_after.anchor", None),
        ({"expires_after[seconds]": "3600"}, "expires_after", "invalid_value"),
        ({"expires_after": "3600"}, "expires_after", "invalid_value"),
        ({"expires_after": '{"anchor": "created_at", "seconds": 3600}', "expires_after[seconds]": "3600"}, None, None),
    ],
)
def test_an_invalid_expires_after_is_a_400_and_keeps_nothing(api, tmp_path, fields, param, code):
    response = upload(api, **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == code
    assert list((tmp_path / "emu" / "files").iterdir()) == []


def test_form_expiry_reads_the_sdks_encoding():
    assert form_expiry({"purpose": "batch"}) is None
    fields = {"expires_after[anchor]": "created_at", "expires_after[seconds]": "86400"}
    assert form_expiry(fields) == {"anchor": "created_at", "seconds": 86400}


def test_an_expired_file_is_gone_and_purged_with_its_bytes(tmp_path):
    store = Store(tmp_path)
    kept, expired = new_id("file"), new_id("file")
    for file_id in (kept, expired):
        store.blob_path(file_id).write_bytes(b"{}\n")
    store.add_file(kept, "kept.jsonl", "batch", 3, 3600)
    store.add_file(expired, "old.jsonl", "batch", 3, 0)  # expires as it is created
    assert store.get_file(expired) is None and store.get_file(kept)["id"] == kept
    assert [f["id"] for f in store.list_files(None, 10, None, "desc")[0]] == [kept]
    assert store.blob_path(expired).exists()  # until the processor's next tick purges it
    assert store.purge_expired() == [expired] and store.purge_expired() == []
    assert sorted(p.name for p in store.files_dir.iterdir()) == [kept]
    store.close()
