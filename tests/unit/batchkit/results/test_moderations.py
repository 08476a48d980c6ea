"""Moderation answers: the result kept as JSON text in the ledger, read into typed columns by the merge (flagged,
the flagged categories' names, every score as JSON) and loaded as such into DuckDB."""

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchkit.errors import InputError
from batchkit.results.merge import merge_partition, merged_schema
from batchkit.results.moderations import answer_text
from batchkit.results.result_line import parse_line
from batchkit.split.splitter import split
from batchkit.warehouse.duckdb_loader import load_duckdb
from tests.helpers import moderated_partition, moderation_line, split_config


def body_of(line: dict) -> dict:
    return line["response"]["body"]


def test_a_moderation_answer_is_kept_as_its_result_json():
    line = moderation_line("a", ["violence", "self-harm/intent"])
    body = body_of(line)
    result = parse_line(line, "b")
    assert result.status == "ok" and result.model == "omni-moderation-2024-09-26"
    assert json.loads(result.response_text) == body["results"][0]
    assert result.prompt_tokens is None and result.finish_reason is None
    assert answer_text({"object": "chat.completion", "choices": []}) is None


def test_several_results_are_combined():
    first, second = (body_of(moderation_line("a", [name]))["results"][0] for name in ("hate", "violence"))
    combined = json.loads(answer_text({"results": [first, second]}))
    assert combined["flagged"] is True
    assert sorted(k for k, v in combined["categories"].items() if v) == ["hate", "violence"]
    assert combined["category_scores"]["hate"] == combined["category_scores"]["violence"] == 0.9


def test_moderation_answers_become_typed_columns_that_load_into_duckdb(tmp_path, write_parquet):
    rows, ledger = moderated_partition(tmp_path, write_parquet)
    merged = tmp_path / "merged.parquet"
    counts = merge_partition(rows, ledger, merged, endpoint="/v1/moderations")
    assert counts["rows"] == 4 and counts["ok"] == 2
    table = pq.read_table(merged)
    assert table.schema.field("flagged").type == pa.bool_()
    assert pa.types.is_list(table.schema.field("categories").type)
    assert table.schema.field("category_scores").type == pa.string()
    assert table.schema.remove_metadata() == merged_schema(pq.read_schema(rows), None, "/v1/moderations")
    by_id = {r["custom_id"]: r for r in table.to_pylist()}
    assert (by_id["a"]["flagged"], by_id["a"]["categories"]) == (False, [])
    assert (by_id["b"]["flagged"], by_id["b"]["categories"]) == (True, ["harassment"])
    assert json.loads(by_id["b"]["category_scores"])["harassment"] == 0.9
    assert [by_id[k]["flagged"] for k in "cd"] == [None, None]  # an error, a skipped row: no verdict
    assert by_id["c"]["error_code"] == "server_error" and by_id["d"]["error_code"] == "skipped"

    database = tmp_path / "wh.duckdb"
    assert load_duckdb(database, "moderated", [str(merged)], "2026-12-01", "run1") == 4
    with duckdb.connect(str(database)) as con:
        types = dict(con.sql("SELECT column_name, data_type FROM information_schema.columns").fetchall())
        assert (types["flagged"], types["categories"], types["category_scores"]) == ("BOOLEAN", "VARCHAR[]", "VARCHAR")
        got = con.sql(
            "SELECT custom_id, categories, json_extract(category_scores, '$.harassment')::DOUBLE FROM moderated "
            "WHERE flagged ORDER BY custom_id"
        ).fetchall()
    assert got == [("b", ["harassment"], 0.9)]


def test_without_the_moderations_endpoint_there_are_no_moderation_columns(tmp_path, write_parquet):
    rows, _ = moderated_partition(tmp_path, write_parquet)
    assert "flagged" not in merged_schema(pq.read_schema(rows), None, "/v1/chat/completions").names


def test_input_columns_named_as_moderation_columns_are_refused(tmp_path, write_parquet):
    src = write_parquet("p.parquet", {"text": ["x"], "Flagged": [True]})
    config = split_config(model="omni-moderation-latest", endpoint="/v1/moderations")
    with pytest.raises(InputError, match=r"'Flagged' collide with the moderation result columns"):
        split(str(src), tmp_path / "o", config)
