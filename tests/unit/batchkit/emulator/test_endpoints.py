"""The echo answers of the batch endpoints beyond chat, responses and embeddings, read as the official openai SDK's
types: moderations, completions, image generations and edits, videos; and the 400 lines of bodies the API refuses."""

import base64
import io

import pytest
from openai.types import Completion, ImagesResponse, ModerationCreateResponse, Video
from PIL import Image as Picture

from batchkit.batch_api import ENDPOINTS, TEXT_ENDPOINTS, Endpoint
from batchkit.emulator import backends
from batchkit.emulator.checks import ENDPOINTS as BATCH_ENDPOINTS


def echo(url: str, body: dict, key: str = "batch_1/r1") -> backends.LineResult:
    return backends.echo(url, body, key, 1_700_000_000, 8)


def test_the_batch_api_endpoints_are_one_vocabulary_and_the_split_builds_only_its_own():
    assert (
        set(BATCH_ENDPOINTS)
        == {e.value for e in Endpoint}
        >= {
            "/v1/moderations",
            "/v1/completions",
            "/v1/images/generations",
            "/v1/images/edits",
            "/v1/videos",
        }
    )
    assert ENDPOINTS == ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/moderations")
    assert frozenset({Endpoint.CHAT, Endpoint.RESPONSES}) == TEXT_ENDPOINTS


def test_moderations_parse_as_the_sdks_type_and_flag_named_categories():
    texts = ["a calm walk in the park", "threats of violence and self-harm/intent", "whatever I hate it"]
    result = echo("/v1/moderations", {"model": "omni-moderation-latest", "input": texts})
    assert result.status_code == 200
    answer = ModerationCreateResponse.model_validate(result.body)
    calm, violent, hateful = answer.results
    assert not calm.flagged and max(calm.category_scores.model_dump().values()) < 0.01
    assert violent.flagged and violent.categories.violence and violent.categories.self_harm_intent
    assert violent.categories.self_harm and not violent.categories.hate  # a sub-category flags its parent
    assert violent.category_scores.violence >= 0.9 and violent.category_applied_input_types.violence == ["text"]
    assert hateful.categories.hate and not hateful.categories.harassment  # "whatever" holds "hate", not as a word
    assert echo("/v1/moderations", {"model": "omni-moderation-latest", "input": texts}).body == result.body


def test_moderations_of_text_and_images():
    given = [
        {"type": "text", "text": "a holiday photo"},
        {"type": "image_url", "image_url": {"url": "https://cdn.example/uploads/violence/1.jpg"}},
    ]
    result = echo("/v1/moderations", {"model": "omni-moderation-latest", "input": given})
    (moderation,) = ModerationCreateResponse.model_validate(result.body).results
    assert moderation.flagged and moderation.categories.violence and not moderation.categories.sexual
    assert moderation.category_applied_input_types.violence == ["text", "image"]
    assert moderation.category_applied_input_types.hate == ["text"]
    only_image = echo("/v1/moderations", {"model": "omni-moderation-latest", "input": given[1:]})
    (moderation,) = ModerationCreateResponse.model_validate(only_image.body).results
    assert moderation.category_applied_input_types.hate == [] and moderation.category_scores.hate == 0


def test_completions_parse_as_the_sdks_type_and_stop_at_max_tokens():
    short = Completion.model_validate(echo("/v1/completions", {"model": "davinci-002", "prompt": ["hi", "yo"]}).body)
    assert [c.text for c in short.choices] == ["echo: hi", "echo: yo"] and [c.index for c in short.choices] == [0, 1]
    assert short.choices[0].finish_reason == "stop" and short.usage.total_tokens > 0
    long = Completion.model_validate(echo("/v1/completions", {"model": "davinci-002", "prompt": "word " * 40}).body)
    assert long.choices[0].finish_reason == "length" and long.usage.completion_tokens == 16  # the API's default
    tokens = Completion.model_validate(
        echo("/v1/completions", {"model": "davinci-002", "prompt": [1, 2, 3], "n": 2}).body
    )
    assert len(tokens.choices) == 2 and tokens.usage.prompt_tokens == 3


def decoded(image) -> Picture.Image:
    return Picture.open(io.BytesIO(base64.b64decode(image.b64_json)))


def test_image_generations_and_edits_parse_as_the_sdks_type():
    body = {"model": "gpt-image-1", "prompt": "a red bicycle", "size": "1536x1024", "n": 2, "quality": "low"}
    answer = ImagesResponse.model_validate(echo("/v1/images/generations", body).body)
    assert len(answer.data) == 2 and answer.size == "1536x1024" and answer.quality == "low"
    assert decoded(answer.data[0]).size == (1536, 1024) and answer.data[0].b64_json != answer.data[1].b64_json
    assert answer.usage.output_tokens == 2 * 408 and answer.usage.input_tokens_details.image_tokens == 0
    edit = {"model": "gpt-image-1", "prompt": "paint it blue", "images": [{"image_url": "https://a.example/b.png"}]}
    edited = ImagesResponse.model_validate(echo("/v1/images/edits", edit).body)
    assert decoded(edited.data[0]).size == (1024, 1024) and edited.usage.input_tokens_details.image_tokens == 765
    refused = echo("/v1/images/edits", {"model": "gpt-image-1", "prompt": "paint it blue"})
    assert refused.status_code == 400 and refused.body["error"]["param"] == "images"


def test_videos_parse_as_the_sdks_type():
    body = {"model": "sora-2", "prompt": "a cat on a skateboard", "seconds": "8", "size": "1280x720"}
    video = Video.model_validate(echo("/v1/videos", body).body)
    assert video.status == "completed" and video.progress == 100 and video.seconds == "8"
    assert video.expires_at > video.created_at and video.id.startswith("video_")


@pytest.mark.parametrize(
    ("url", "body", "param"),
    [
        ("/v1/moderations", {"model": "omni-moderation-latest"}, "input"),
        ("/v1/moderations", {"model": "omni-moderation-latest", "input": [1, 2]}, "input"),
        ("/v1/moderations", {"model": "m", "input": [{"type": "video", "url": "x"}]}, "input[0].type"),
        (
            "/v1/moderations",
            {"model": "m", "input": [{"type": "image_url", "image_url": {"url": "x"}}]},
            "input[0].image_url.url",
        ),
        ("/v1/completions", {"model": "davinci-002"}, "prompt"),
        ("/v1/completions", {"model": "davinci-002", "prompt": [["a"]]}, "prompt"),
        ("/v1/completions", {"model": "davinci-002", "prompt": "x", "n": 0}, "n"),
        ("/v1/images/generations", {"model": "gpt-image-1"}, "prompt"),
        ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "x", "size": "huge"}, "size"),
        ("/v1/images/generations", {"model": "gpt-image-1", "prompt": "x", "n": 11}, "n"),
        ("/v1/images/edits", {"model": "gpt-image-1", "prompt": "x", "image": "nope"}, "image[0]"),
        ("/v1/videos", {"model": "sora-2", "prompt": "x", "seconds": "5"}, "seconds"),
        ("/v1/videos", {"model": "sora-2", "prompt": "x", "size": "10x10"}, "size"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "x"}, "url"),
    ],
)
def test_a_body_the_api_refuses_is_a_400_line(url, body, param):
    result = echo(url, body)
    assert result.status_code == 400 and result.body["error"]["param"] == param, result.body
