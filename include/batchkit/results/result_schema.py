"""The columns of a result row (one per request) and of a ledger row (a result plus what the ledger needs)."""

import pyarrow as pa

RESULT_SCHEMA = pa.schema(
    [
        ("custom_id", pa.string()),
        ("batch_id", pa.string()),
        ("status", pa.string()),
        ("response_text", pa.string()),
        ("finish_reason", pa.string()),
        ("refusal", pa.string()),
        ("embedding", pa.list_(pa.float32())),
        ("model", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        ("http_status", pa.int32()),
        ("attempts", pa.int32()),
    ]
)
LEDGER_SCHEMA = RESULT_SCHEMA.append(pa.field("fingerprint", pa.string())).append(pa.field("final", pa.bool_()))
LEDGER_SCHEMA = LEDGER_SCHEMA.append(pa.field("recorded_at", pa.float64()))
