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
        ("prompt_tokens", pa.int64()),  # every input token, those read from or written to the prompt cache included
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        ("http_status", pa.int32()),
        ("attempts", pa.int32()),
    ]
)
# What the bill needs beyond the result columns: the part of prompt_tokens read from the prompt cache (OpenAI/Azure
# ``prompt_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens``) and written to it (Anthropic
# ``cache_creation_input_tokens``). Kept in the ledger only, not in the merged rows; ledger files written before
# these columns existed read as null (priced as uncached input).
CACHE_SCHEMA = pa.schema([("cached_tokens", pa.int64()), ("cache_write_tokens", pa.int64())])
PARSED_SCHEMA = pa.unify_schemas([RESULT_SCHEMA, CACHE_SCHEMA])  # what the result parsers yield
LEDGER_SCHEMA = RESULT_SCHEMA.append(pa.field("fingerprint", pa.string())).append(pa.field("final", pa.bool_()))
LEDGER_SCHEMA = pa.unify_schemas([LEDGER_SCHEMA.append(pa.field("recorded_at", pa.float64())), CACHE_SCHEMA])
