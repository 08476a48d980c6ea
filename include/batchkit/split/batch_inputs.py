"""Reading a batch input file back: the request lines to resend, their fingerprints, the output schema asked for."""

from collections.abc import Iterator
from pathlib import Path

import orjson

from ..storage import open_file
from ..structured import AnswerCheck, schema_of
from .requests import ID_PREFIX


def request_lines(batch_file: str | Path, custom_ids: set[str]) -> Iterator[bytes]:
    """The original request lines for ``custom_ids`` (to resubmit them), streamed from the batch file."""
    with open_file(batch_file) as lines:
        for raw in lines:
            if raw.strip() and orjson.loads(raw)["custom_id"] in custom_ids:
                yield raw if raw.endswith(b"\n") else raw + b"\n"


def fingerprints(batch_file: str | Path) -> dict[str, str]:
    """``custom_id -> fingerprint`` of a batch input file written by the splitter (see ``ledger.fingerprint``)."""
    from ..ledger import fingerprint

    found = {}
    with open_file(batch_file) as lines:
        for raw in lines:
            if raw.strip():
                line = raw if raw.endswith(b"\n") else raw + b"\n"
                custom_id = orjson.loads(line)["custom_id"]
                found[custom_id] = fingerprint(line[len(ID_PREFIX) + len(orjson.dumps(custom_id)) :])
    return found


def answer_check(batch_file: str | Path) -> AnswerCheck | None:
    """The check of the output schema a batch input file's requests ask for (structured outputs), or None."""
    with open_file(batch_file) as lines:
        for raw in lines:
            if raw.strip():
                schema = schema_of(orjson.loads(raw)["body"])
                return AnswerCheck(schema) if schema else None
    return None
