"""Column-wise request lines: the very bytes and fingerprints of the one-line-at-a-time encoding (orjson)."""

import random

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from batchkit.ledger import fingerprint
from batchkit.results.arrow_numpy import flags, numbers, strings, valid
from batchkit.split.lines import RequestLines
from batchkit.split.requests import RequestShape

SHAPE = RequestShape.build("/v1/chat/completions", "m", 'sys "é"\n', {"temperature": 0.5})


def _texts(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x80)] + ["é", "東", "🎉", "\u2028", "\u3000", "\\\\", '""']
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(count)]
    return [*texts, *(chr(c) for c in range(0x80)), "", "\\", '"', "\n\n"]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.binary()])
def test_lines_and_fingerprints_match_the_per_line_encoding(kind):
    texts = _texts(3000)
    ids = [f'id-"{i}"\\é\x01' if i % 3 else str(i) for i in range(len(texts))]
    prompts = pa.array([t.encode() for t in texts] if kind == pa.binary() else texts, kind)
    for start, stop in [(0, len(texts)), (7, 500), (len(texts) - 3, len(texts)), (5, 5)]:
        got = RequestLines.build(SHAPE, pa.array(ids).slice(start, stop - start), prompts.slice(start, stop - start))
        expected = [SHAPE.line(i, t) for i, t in zip(ids[start:stop], texts[start:stop])]
        assert got.lines.to_pylist() == expected
        assert got.fingerprints() == [
            fingerprint(line[len(SHAPE.head) + len(orjson.dumps(i)) :]) for i, line in zip(ids[start:stop], expected)
        ]


def test_taken_lines_keep_their_fingerprints():
    texts = _texts(50)
    lines = RequestLines.build(SHAPE, pa.array([str(i) for i in range(len(texts))]), pa.array(texts))
    positions = np.array([5, 3, 100, 0])
    taken = lines.take(positions)
    assert taken.lines.to_pylist() == [lines.lines[int(p)].as_py() for p in positions]
    assert taken.fingerprints() == [lines.fingerprints()[p] for p in positions]


def test_arrow_numpy_conversions_handle_nulls_and_slices():
    texts = pa.array([" ", "a", None, "", " \u3000", None, "b"]).slice(1)
    assert flags(pc.utf8_is_space(texts)).tolist() == [False, False, False, True, False, False]
    assert valid(texts).tolist() == [True, False, True, True, False, True]
    assert numbers(pc.binary_length(texts)).tolist() == [1, 0, 0, 4, 0, 1]
    assert strings([None, "é", None, "x"]).to_pylist() == [None, "é", None, "x"]
    assert strings([]).to_pylist() == []


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses", "/v1/moderations"])
def test_lines_with_images_match_the_per_line_encoding(endpoint):
    shape = RequestShape.build(endpoint, "m", None, {"temperature": 0.5}, images=2, detail="low")
    texts = _texts(300, seed=2)
    ids = [f"r{i}" for i in range(len(texts))]
    first = [f'https://x.example/{i}.png?q="{t[:5]}"' for i, t in enumerate(texts)]
    second = [f"data:image/png;base64,{i:08d}" for i in range(len(texts))]
    got = RequestLines.build(shape, pa.array(ids), pa.array(texts), [pa.array(first), pa.array(second)])
    expected = [shape.line(*values) for values in zip(ids, texts, first, second)]
    assert got.lines.to_pylist() == expected
    assert got.fingerprints() == [
        fingerprint(line[len(shape.head) + len(orjson.dumps(i)) :]) for i, line in zip(ids, expected)
    ]
    body = orjson.loads(expected[0])["body"]
    if endpoint == "/v1/chat/completions":
        assert body["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": texts[0]},
                    {"type": "image_url", "image_url": {"url": first[0], "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": second[0], "detail": "low"}},
                ],
            }
        ]
    elif endpoint == "/v1/responses":
        assert body["input"] == [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": texts[0]},
                    {"type": "input_image", "image_url": first[0], "detail": "low"},
                    {"type": "input_image", "image_url": second[0], "detail": "low"},
                ],
            }
        ]
    else:  # the moderation API's multi-modal input (no detail there)
        assert body["input"] == [
            {"type": "text", "text": texts[0]},
            {"type": "image_url", "image_url": {"url": first[0]}},
            {"type": "image_url", "image_url": {"url": second[0]}},
        ]


@pytest.mark.parametrize(
    "endpoint,system,expected",
    [  # computed before image inputs existed: a request without images keeps its fingerprint
        ("/v1/chat/completions", "sys", "d2133ecd967f287853de5a378290713b"),
        ("/v1/responses", "sys", "05d919141d26b755457d254a1e49a71e"),
        ("/v1/embeddings", None, "60f3e9a606bdbd532c17b8d9ef752c69"),
    ],
)
def test_requests_without_images_keep_their_fingerprint(endpoint, system, expected):
    shape = RequestShape.build(endpoint, "gpt-4o-mini", system, {"temperature": 0})
    lines = RequestLines.build(shape, pa.array(["r1"]), pa.array(['hello "x"']))
    assert lines.fingerprints() == [expected]


def test_images_are_refused_where_the_endpoint_takes_none():
    from batchkit.errors import InputError

    with pytest.raises(InputError, match="/v1/embeddings takes no images"):
        RequestShape.build("/v1/embeddings", "text-embedding-3-small", images=1)
    with pytest.raises(InputError, match="image detail must be one of auto, low, high"):
        RequestShape.build("/v1/chat/completions", "m", images=1, detail="ultra")
    with pytest.raises(InputError, match="/v1/moderations takes no system prompt"):
        RequestShape.build("/v1/moderations", "omni-moderation-latest", "sys")
