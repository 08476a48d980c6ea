"""Image parts of the split's request lines become Anthropic ``image`` blocks the anthropic SDK's types accept."""

import orjson
import pytest
from anthropic.types import ImageBlockParam, TextBlockParam
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import TypeAdapter

from batchkit.errors import InputError
from batchkit.split.requests import RequestShape
from openai_batch.vendors.anthropic_content import content_blocks
from openai_batch.vendors.anthropic_convert import Converter

PNG = "data:image/png;base64,iVBORw0KGgo="
PARAMS = TypeAdapter(MessageCreateParamsNonStreaming)
BLOCKS = {"text": TypeAdapter(TextBlockParam), "image": TypeAdapter(ImageBlockParam)}


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses"])
def test_image_parts_become_image_blocks(endpoint):
    shape = RequestShape.build(endpoint, "claude-sonnet-4-5", "Be terse.", {}, images=2, detail="high")
    line = orjson.loads(shape.line("r-1", "What is shown?", "https://cdn.example/a.jpg", PNG))
    params = Converter().params(line)
    assert params["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is shown?"},
                {"type": "image", "source": {"type": "url", "url": "https://cdn.example/a.jpg"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ],
        }
    ]
    assert params["system"] == "Be terse."
    PARAMS.validate_python(params)  # the SDK's own request type (lenient about content lists: each block too)
    for block in params["messages"][0]["content"]:
        BLOCKS[block["type"]].validate_python(block)


def test_a_data_url_of_another_type_is_refused_by_the_sdks_type():
    block = content_blocks([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}])[0]
    with pytest.raises(ValueError, match="media_type"):
        BLOCKS["image"].validate_python(block)  # as Anthropic refuses it (the split only sends PNG/JPEG/GIF/WebP)


def test_text_stays_text_and_other_parts_are_refused():
    assert content_blocks("plain") == "plain"
    with pytest.raises(InputError, match="not 'input_audio' parts"):
        content_blocks([{"type": "input_audio", "input_audio": {}}])
