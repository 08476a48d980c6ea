"""Streaming multipart parsing for file uploads: contents go straight to disk, with hard limits on the whole
body, the number of parts and their headers; anything malformed or cut short is a ``BadUpload``."""

from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

MAX_FIELD_BYTES = 4096
MAX_PARTS = 16  # the file and a few small fields (purpose, expires_after...)
ENVELOPE_BYTES = 64 * 1024  # what the body may hold beyond the file's bytes (boundaries, headers, fields)


class UploadTooLarge(Exception):
    pass


class BadUpload(Exception):
    pass


async def receive_upload(request: Request, target: Path, max_bytes: int) -> tuple[dict[str, str], str, int]:
    """Stream a ``multipart/form-data`` body: the ``file`` part into ``target``, other parts as small text fields.

    :returns: (fields, uploaded filename, file size)
    :raises UploadTooLarge: as soon as the file part passes ``max_bytes`` (nothing more is read).
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise BadUpload("expected a multipart/form-data body with a 'file' part")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise UploadTooLarge()

    fields: dict[str, str] = {}
    state = {"name": None, "filename": None, "size": 0, "header": b"", "headers": {}, "value": bytearray()}
    state |= {"parts": 0, "ended": False}  # part headers are bounded by the parser itself
    sink = target.open("wb")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        key = state["header"].lower()
        state["headers"][key] = state["headers"].get(key, b"") + data[start:end]

    def on_header_end() -> None:
        state["header"] = b""

    def on_headers_finished() -> None:
        state["parts"] += 1
        if state["parts"] > MAX_PARTS:
            raise BadUpload(f"more than {MAX_PARTS} form parts")
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["name"] = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        if state["name"] == "file":
            if state["filename"] is not None:
                raise BadUpload("more than one 'file' part")
            state["filename"] = filename.decode("utf-8", "replace") if filename else "upload.jsonl"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["name"] == "file":
            state["size"] += end - start
            if state["size"] > max_bytes:
                raise UploadTooLarge()
            sink.write(data[start:end])
        else:
            state["value"] += data[start:end]
            if len(state["value"]) > MAX_FIELD_BYTES:
                raise BadUpload(f"form field {state['name']!r} is too long")

    def on_part_end() -> None:
        if state["name"] and state["name"] != "file":
            fields[state["name"]] = state["value"].decode("utf-8", "replace")
        state.update(name=None, headers={}, value=bytearray())

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + ENVELOPE_BYTES:
                raise UploadTooLarge()
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadUpload(f"malformed multipart body ({exc})") from None
    except ClientDisconnect:
        raise BadUpload("the client disconnected before the upload was complete") from None
    finally:
        sink.close()
    if not state["ended"]:
        raise BadUpload("the multipart body ends without its closing boundary: the upload is incomplete")
    if state["filename"] is None:
        raise BadUpload("missing the 'file' part")
    return fields, state["filename"], state["size"]
