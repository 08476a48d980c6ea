"""Every endpoint OpenAI allows in a batch, over real HTTP with the official openai SDK: moderations (answers read
as ``ModerationCreateResponse``), chat and responses with image parts, completions, image generations, videos; a
malformed line is a 400 in the error file, the batch still completes."""

import base64

from openai.types import Completion, ImagesResponse, ModerationCreateResponse, Video
from openai.types.chat import ChatCompletion

from batchkit.emulator.generations import png
from tests.emulator_client import client_for, jsonl, upload, wait

PNG = "data:image/png;base64," + base64.b64encode(png(800, 600, "336699")).decode()


def line(custom_id: str, url: str, body: dict) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def run(client, tmp_path, url: str, lines: list[dict]) -> tuple[dict, dict, object]:
    """Run ``lines`` as one batch on ``url``: its answer bodies and error records by custom_id, and the batch."""
    file_id = upload(client, tmp_path, lines, f"{url.strip('/').replace('/', '_')}.jsonl")
    done = wait(client, client.batches.create(input_file_id=file_id, endpoint=url, completion_window="24h").id)
    assert done.status == "completed", done
    out = {r["custom_id"]: r["response"]["body"] for r in jsonl(client, done.output_file_id)}
    err = {r["custom_id"]: r["response"] for r in jsonl(client, done.error_file_id)}
    return out, err, done


def test_a_moderations_batch(emulator, tmp_path):
    client = client_for(emulator())
    model = "omni-moderation-latest"
    image = {"type": "image_url", "image_url": {"url": "https://cdn.example/sexual/7.png"}}
    out, err, done = run(
        client,
        tmp_path,
        "/v1/moderations",
        [
            line("calm", "/v1/moderations", {"model": model, "input": "a lovely day at the beach"}),
            line("two", "/v1/moderations", {"model": model, "input": ["harassment here", "fine"]}),
            line("image", "/v1/moderations", {"model": model, "input": [{"type": "text", "text": "look"}, image]}),
            line("bad", "/v1/moderations", {"model": model, "input": [{"type": "image_url", "image_url": {}}]}),
        ],
    )
    assert done.model == model and done.request_counts.completed == 3 and done.request_counts.failed == 1
    answers = {custom_id: ModerationCreateResponse.model_validate(body) for custom_id, body in out.items()}
    assert [r.flagged for r in answers["calm"].results] == [False]
    assert [r.categories.harassment for r in answers["two"].results] == [True, False]
    (seen,) = answers["image"].results
    assert seen.flagged and seen.categories.sexual and seen.category_applied_input_types.sexual == ["text", "image"]
    assert err["bad"]["status_code"] == 400 and err["bad"]["body"]["error"]["param"] == "input[0].image_url.url"


def test_chat_and_responses_batches_with_image_parts(emulator, tmp_path):
    client = client_for(emulator())

    def chat(custom_id: str, *images: dict) -> dict:
        content = [{"type": "text", "text": "describe"}, *images]
        return line(
            custom_id, "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}
        )

    def image(url: str, detail: str = "auto") -> dict:
        return {"type": "image_url", "image_url": {"url": url, "detail": detail}}

    out, err, _ = run(
        client,
        tmp_path,
        "/v1/chat/completions",
        [
            chat("plain"),
            chat("two", image(PNG, "high"), image("https://cdn.example/a.jpg", "low")),
            chat("bad", image("s3://bucket/a.jpg")),
        ],
    )
    plain, two = ChatCompletion.model_validate(out["plain"]), ChatCompletion.model_validate(out["two"])
    assert plain.choices[0].message.content == "echo: describe"
    assert two.choices[0].message.content == "echo: describe [2 images]"
    assert two.usage.prompt_tokens == plain.usage.prompt_tokens + (85 + 170 * 4) + 85  # 800x600 high: 4 tiles
    assert err["bad"]["status_code"] == 400
    assert err["bad"]["body"]["error"]["param"] == "messages[0].content[1].image_url.url"

    parts = [{"type": "input_text", "text": "describe"}, {"type": "input_image", "image_url": PNG, "detail": "low"}]
    body = {"model": "gpt-4o", "input": [{"role": "user", "content": parts}]}
    out, _, _ = run(client, tmp_path, "/v1/responses", [line("r", "/v1/responses", body)])
    assert out["r"]["output"][0]["content"][0]["text"] == "echo: describe [1 image]"


def test_completions_images_and_videos_batches(emulator, tmp_path):
    client = client_for(emulator())
    out, _, _ = run(
        client,
        tmp_path,
        "/v1/completions",
        [line("c", "/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test"})],
    )
    assert Completion.model_validate(out["c"]).choices[0].text == "echo: Say this is a test"

    body = {"model": "gpt-image-1", "prompt": "a lighthouse", "size": "1024x1536", "quality": "high"}
    out, _, done = run(client, tmp_path, "/v1/images/generations", [line("i", "/v1/images/generations", body)])
    generated = ImagesResponse.model_validate(out["i"])
    assert base64.b64decode(generated.data[0].b64_json)[:8] == b"\x89PNG\r\n\x1a\n"
    assert generated.usage.output_tokens == 6240 and done.usage.output_tokens == 6240

    body = {"model": "sora-2", "prompt": "waves at dusk", "seconds": "4"}
    out, _, _ = run(client, tmp_path, "/v1/videos", [line("v", "/v1/videos", body)])
    assert Video.model_validate(out["v"]).status == "completed"
