"""Structured outputs: schema -> typed columns, request bodies for both endpoints, and the answer checks."""

import orjson
import pyarrow as pa
import pytest
from pydantic import BaseModel

from batchkit import structured
from batchkit.errors import InputError
from batchkit.sentiment import SENTIMENT_SCHEMA
from batchkit.split.requests import RequestShape

SENTIMENT = SENTIMENT_SCHEMA


def test_schema_properties_become_typed_columns():
    schema = {
        "type": "object",
        "properties": {
            "label": {"enum": ["a", "b"]},
            "score": {"type": "number"},
            "count": {"type": ["integer", "null"]},
            "flag": {"type": "boolean"},
            "topics": {"type": "array", "items": {"type": "string"}},
            "ranks": {"type": "array", "items": {"$ref": "#/$defs/rank"}},
            "entity": {"type": "object", "properties": {"name": {"type": "string"}}},
            "pairs": {"type": "array", "items": {"type": "object"}},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "maybe": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "name": {"$ref": "#/definitions/name"},
        },
        "$defs": {"rank": {"type": "integer"}},
        "definitions": {"name": {"type": "string"}},
    }
    got = {c.name: (c.type, c.json) for c in structured.columns(schema)}
    assert got == {
        "label": (pa.string(), False),
        "score": (pa.float64(), False),
        "count": (pa.int64(), False),
        "flag": (pa.bool_(), False),
        "topics": (pa.list_(pa.string()), False),
        "ranks": (pa.list_(pa.int64()), False),
        "entity": (pa.string(), True),
        "pairs": (pa.string(), True),
        "either": (pa.string(), True),
        "maybe": (pa.float64(), False),
        "name": (pa.string(), False),
    }


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array"}, "must be a JSON Schema object with properties"),
        ({"type": "object", "properties": {}}, "must be a JSON Schema object with properties"),
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "not a valid JSON Schema"),
        ({"type": "object", "properties": {"x" * 64: {"type": "string"}}}, "cannot be a column name"),
    ],
)
def test_bad_schemas_are_refused_with_the_reason(schema, message):
    with pytest.raises(InputError, match=message):
        structured.columns(schema)


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses"])
def test_each_text_endpoint_asks_for_the_schema_in_its_own_form(endpoint):
    shape = RequestShape.build(endpoint, "gpt-4o-mini", "Classify.", {"temperature": 0}, output_schema=SENTIMENT)
    body = orjson.loads(shape.line("r1", "great product"))["body"]
    if endpoint == "/v1/chat/completions":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SENTIMENT, "strict": True},
        }
    else:
        assert body["text"] == {
            "format": {"type": "json_schema", "name": "answer", "schema": SENTIMENT, "strict": True}
        }
    assert structured.schema_of(body) == SENTIMENT and body["temperature"] == 0


def test_embeddings_and_clashing_body_options_are_refused():
    with pytest.raises(InputError, match="needs a text endpoint"):
        RequestShape.build("/v1/embeddings", "text-embedding-3-small", output_schema=SENTIMENT)
    with pytest.raises(InputError, match="response_format"):
        RequestShape.build(
            "/v1/chat/completions", "m", body_options={"response_format": {"type": "text"}}, output_schema=SENTIMENT
        )


@pytest.mark.parametrize(
    ("text", "finish", "refusal", "code"),
    [
        ('{"label": "positive", "confidence": 0.9}', "stop", None, None),
        ('{"label": "très bien ✓", "confidence": 0.9}', "stop", None, "output_schema_mismatch"),
        ('{"label": "positive", "confidence": "high"}', "stop", None, "output_schema_mismatch"),
        ('{"label": "positive", "confidence": 0.9, "extra": 1}', "stop", None, "output_schema_mismatch"),
        ('{"label": "positive"}', "stop", None, "output_schema_mismatch"),
        ('{"label": "posi', "length", None, "output_truncated"),
        ("not json", "stop", None, "output_not_json"),
        (None, "stop", "I can't help with that.", "output_refused"),
        (None, "stop", None, "output_not_json"),
    ],
    ids=[
        "valid",
        "unicode not in enum",
        "wrong type",
        "extra field",
        "missing field",
        "truncated",
        "not json",
        "refusal",
        "no text",
    ],
)
def test_answers_are_checked_against_the_schema(text, finish, refusal, code):
    problem = structured.AnswerCheck(SENTIMENT).problem(text, finish, refusal)
    assert (problem[0] if problem else None) == code
    if problem:
        assert problem[1]  # a reason people can read


def chat_answer(custom_id: str, content: str | None, finish: str = "stop", refusal: str | None = None) -> dict:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    body = {
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return {"id": "r", "custom_id": custom_id, "error": None, "response": {"status_code": 200, "body": body}}


def response_answer(custom_id: str, text: str, status: str = "completed", refusal: str | None = None) -> dict:
    part = {"type": "refusal", "refusal": refusal} if refusal else {"type": "output_text", "text": text}
    body = {
        "object": "response",
        "model": "gpt-4o-mini",
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "output": [{"type": "message", "content": [part]}],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }
    return {"id": "r", "custom_id": custom_id, "error": None, "response": {"status_code": 200, "body": body}}


ANSWERS = {  # review -> (chat answer, responses answer, expected status, error code)
    0: ('{"label": "positive", "confidence": 0.9}', {}, "ok", None),
    1: ('{"label": "négatif", "confidence": 0.5}', {}, "invalid_output", "output_schema_mismatch"),
    2: ('{"label": "neg', {"finish": "length"}, "invalid_output", "output_truncated"),
    3: (None, {"refusal": "I can't help with that."}, "invalid_output", "output_refused"),
    4: ('{"label": "neutral", "confidence": 0.25}', {}, "ok", None),
}


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses"])
def test_answers_are_checked_merged_into_typed_columns_and_loaded(tmp_path, write_parquet, endpoint):
    import duckdb

    from batchkit.ledger import is_retryable
    from batchkit.results.merge import merge_partition
    from batchkit.results.results import result_batches, write_results
    from batchkit.split.batch_inputs import answer_check, fingerprints
    from batchkit.split.splitter import SplitConfig, split
    from batchkit.warehouse.duckdb_loader import load_duckdb

    src = write_parquet("p/a.parquet", {"review_id": list(ANSWERS), "text": [f"review {i}" for i in ANSWERS]})
    config = SplitConfig(
        model="m", endpoint=endpoint, prompt_column="text", id_column="review_id", output_schema=SENTIMENT
    )
    split(str(src), tmp_path / "o", config)
    batch_file = tmp_path / "o" / "batch-00000.jsonl"
    lines = []
    for custom_id in (json_line["custom_id"] for json_line in map(orjson.loads, batch_file.read_bytes().splitlines())):
        text, how, *_ = ANSWERS[int(custom_id)]
        if endpoint == "/v1/chat/completions":
            lines.append(chat_answer(custom_id, text, how.get("finish", "stop"), how.get("refusal")))
        else:
            status = "incomplete" if how.get("finish") == "length" else "completed"
            lines.append(response_answer(custom_id, text or "", status, how.get("refusal")))
    (tmp_path / "out.jsonl").write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    ledger = tmp_path / "ledger.parquet"
    check = answer_check(batch_file)

    def source(per_line: bool):
        return result_batches([tmp_path / "out.jsonl"], "b1", per_line)

    write_results(source, fingerprints(batch_file), 1, ledger, expected=len(ANSWERS), check=check)
    recorded = {int(r["custom_id"]): r for r in pa.parquet.read_table(ledger).to_pylist()}
    assert {i: (r["status"], r["error_code"]) for i, r in recorded.items()} == {
        i: (status, code) for i, (_, _, status, code) in ANSWERS.items()
    }
    assert recorded[1]["response_text"] == ANSWERS[1][0], "the raw text of an invalid answer is kept"
    assert [i for i, r in recorded.items() if not r["final"]] == [2], "only a truncated answer is asked again"
    assert is_retryable(recorded[2]["status"], recorded[2]["http_status"], recorded[2]["error_code"])

    counts = merge_partition(
        str(tmp_path / "o" / "rows.parquet"), [str(ledger)], tmp_path / "m.parquet", output_schema=SENTIMENT
    )
    assert counts == {"rows": 5, "ok": 2, "errors": 3, "invalid": 3, "unanswered": 0}
    database = tmp_path / "w.duckdb"
    assert load_duckdb(database, "sentiment", [str(tmp_path / "m.parquet")], "2026-11-24", "run1") == 5
    with duckdb.connect(str(database)) as con:
        rows = con.execute("SELECT review_id, label, confidence FROM sentiment ORDER BY review_id").fetchall()
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns").fetchall())
    assert rows == [(0, "positive", 0.9), (1, None, None), (2, None, None), (3, None, None), (4, "neutral", 0.25)]
    assert (types["label"], types["confidence"]) == ("VARCHAR", "DOUBLE")


def test_answer_properties_may_not_shadow_result_or_input_columns(tmp_path, write_parquet):
    from batchkit.split.splitter import SplitConfig, split

    src = write_parquet("a.parquet", {"text": ["x"], "Label": ["kept"]})
    properties = {"label": {"type": "string"}, "status": {"type": "string"}}
    schema = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    config = SplitConfig(model="m", prompt_column="text", output_schema=schema)
    with pytest.raises(InputError, match=r"'label' \(the input column 'Label'\), 'status' \(the result column"):
        split(str(src), tmp_path / "o", config)
    assert not (tmp_path / "o").exists()


class Review(BaseModel):
    label: str
    topics: list[str]
    score: float | None


@pytest.mark.parametrize("spec", [Review, f"{__name__}.Review"], ids=["class", "dotted path"])
def test_a_pydantic_model_gives_the_strict_schema(spec):
    schema = structured.load_schema(spec)
    assert schema["additionalProperties"] is False and sorted(schema["required"]) == ["label", "score", "topics"]
    assert [(c.name, c.type) for c in structured.columns(schema)] == [
        ("label", pa.string()),
        ("topics", pa.list_(pa.string())),
        ("score", pa.float64()),
    ]


def test_an_unknown_dotted_path_is_named():
    with pytest.raises(InputError, match=r"'no\.such\.Model': no such Pydantic model"):
        structured.load_schema("no.such.Model")


def test_a_schema_openai_would_refuse_in_strict_mode_is_refused_before_any_request_naming_where():
    loose = {
        "type": "object",
        "properties": {"label": {"type": "string"}, "entity": {"$ref": "#/$defs/entity"}},
        "required": ["label"],
        "additionalProperties": False,
        "$defs": {"entity": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
    }
    with pytest.raises(InputError) as refused:
        RequestShape.build("/v1/chat/completions", "gpt-4o-mini", output_schema=loose)
    assert "$: 'required' lacks 'entity'" in str(refused.value)
    assert "$.$defs.entity: 'additionalProperties' must be false" in str(refused.value)
    strict = {**loose, "required": ["label", "entity"]}
    strict["$defs"] = {"entity": {**loose["$defs"]["entity"], "additionalProperties": False}}
    assert structured.request_fields("/v1/responses", strict)["text"]["format"]["strict"] is True


def test_pydantic_models_are_made_strict_by_the_sdk():
    class Entity(BaseModel):
        name: str
        aliases: list[str] | None = None

    class Answer(BaseModel):
        label: str
        entity: Entity

    schema = structured.load_schema(Answer)
    structured.check_strict(schema)  # would raise if the SDK's conversion left anything loose
