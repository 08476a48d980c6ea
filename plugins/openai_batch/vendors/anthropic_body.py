"""The create body of an Anthropic message batch, converted from the split's batch file as it is sent."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from openai_batch.vendors.anthropic_convert import Converter


class RequestsBody:
    """The create body ``{"requests": [...]}`` of a batch file, converted line by line as it is sent (bounded
    memory; iterable again, e.g. to measure it first)."""

    def __init__(self, path: str, key: str, converter: Converter) -> None:
        self.path, self.key, self.converter = path, key, converter

    def __iter__(self) -> Iterator[bytes]:
        from batchkit.storage import open_file

        yield b'{"requests":['
        first = True
        with open_file(self.path) as lines:
            for raw in lines:
                if raw.strip():
                    yield (b"" if first else b",") + orjson.dumps(self.converter.request(orjson.loads(raw), self.key))
                    first = False
        yield b"]}"

    def measure(self) -> tuple[int, int]:
        """The body's size in bytes and its request count (every line converted once, nothing kept)."""
        size = count = 0
        for chunk in self:
            size += len(chunk)
            count += 1
        return size, count - 2
