"""Image parts as the emulator checks and meters them: sizes read from real encodings (Pillow), OpenAI's vision
guide examples for tokens, and the 400 lines the API answers for a malformed part."""

import base64
import io

import pytest
from PIL import Image as Picture

from batchkit.emulator import backends
from batchkit.emulator.generations import png
from batchkit.emulator.vision import URL_SIZE, Image, image_tokens, sniff


def encoded(fmt: str, size: tuple[int, int], **options) -> bytes:
    buffer = io.BytesIO()
    Picture.new("RGB", size, (200, 30, 60)).save(buffer, fmt, **options)
    return buffer.getvalue()


def data_url(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_sizes_are_read_from_real_encodings(fmt, options):
    assert sniff(encoded(fmt, (641, 47), **options)) == (641, 47)


def test_a_jpeg_with_a_large_header_counts_as_a_url_image():
    raw = encoded("JPEG", (300, 200), exif=b"Exif\x00\x00" + b"\x00" * 60_000, icc_profile=b"\x00" * 60_000)
    assert sniff(raw) == (300, 200)
    assert sniff(raw[:70_000]) == ()  # the size lies past what the emulator reads: a known format, size unknown
    assert sniff(b"hello") is None


def test_the_echo_png_is_a_real_png_of_its_size():
    with Picture.open(io.BytesIO(png(1536, 1024, "2d8659"))) as picture:
        assert picture.size == (1536, 1024) and picture.convert("RGB").getpixel((7, 7)) == (0x2D, 0x86, 0x59)


@pytest.mark.parametrize(
    ("model", "size", "detail", "expected"),
    [
        ("gpt-4o", (1024, 1024), "high", 765),  # the vision guide's examples
        ("gpt-4o", (2048, 4096), "high", 1105),
        ("gpt-4o", (4096, 8192), "low", 85),
        ("gpt-4o", (1024, 1024), "auto", 765),
        ("gpt-4o-mini", (1024, 1024), "high", 2833 + 4 * 5667),
        ("gpt-5", (512, 512), "high", 70 + 140),
        ("gpt-4.1-mini", (1024, 1024), "high", 1659),  # 1,024 patches x 1.62
        ("gpt-4.1-nano", (1800, 2400), "low", 3572),  # 1,452 patches (the guide's example) x 2.46
    ],
)
def test_image_tokens_follow_the_vision_guide(model, size, detail, expected):
    assert image_tokens(model, Image(detail, size)) == expected


def chat(*parts: dict, model: str = "gpt-4o") -> backends.LineResult:
    body = {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": "what"}, *parts]}]}
    return backends.echo("/v1/chat/completions", body, "b/1", 1, 8)


def image_part(url, detail: str | None = None) -> dict:
    return {"type": "image_url", "image_url": {"url": url} | ({"detail": detail} if detail else {})}


def test_chat_images_are_said_and_counted():
    plain = chat().body["usage"]["prompt_tokens"]
    result = chat(image_part(data_url(encoded("PNG", (512, 512)))), image_part("https://cdn.example/a.jpg", "low"))
    assert result.status_code == 200
    assert result.body["choices"][0]["message"]["content"] == "echo: what [2 images]"
    assert result.body["usage"]["prompt_tokens"] == plain + (85 + 170) + 85


def test_responses_input_images_are_said_and_counted():
    def respond(*parts: dict) -> backends.LineResult:
        given = [{"role": "user", "content": [{"type": "input_text", "text": "what"}, *parts]}]
        return backends.echo("/v1/responses", {"model": "gpt-4o", "input": given}, "b/1", 1, 8)

    plain = respond().body["usage"]["input_tokens"]
    result = respond({"type": "input_image", "image_url": "https://a.example/x.png", "detail": "high"})
    assert result.body["output"][0]["content"][0]["text"] == "echo: what [1 image]"
    assert (
        result.body["usage"]["input_tokens"] == plain + 765 == plain + image_tokens("gpt-4o", Image("high", URL_SIZE))
    )
    assert respond({"type": "input_image", "file_id": "file-abc", "detail": "low"}).status_code == 200
    missing = respond({"type": "input_image", "detail": "low"})
    assert missing.status_code == 400 and missing.body["error"]["param"] == "input[0].content[1].image_url"


@pytest.mark.parametrize(
    ("part", "param", "code"),
    [
        (image_part("ftp://files.example/a.png"), "messages[0].content[1].image_url.url", "invalid_value"),
        (image_part("/images/a.png"), "messages[0].content[1].image_url.url", "invalid_value"),
        (image_part("https://"), "messages[0].content[1].image_url.url", "invalid_value"),
        (image_part(None), "messages[0].content[1].image_url.url", "missing_required_parameter"),
        (image_part(42), "messages[0].content[1].image_url.url", "invalid_type"),
        (image_part("data:image/png;base64,aGVsbG8="), "messages[0].content[1].image_url.url", "invalid_image_format"),
        (image_part("data:text/plain;base64,aGVsbG8="), "messages[0].content[1].image_url.url", "invalid_image_format"),
        (image_part("data:image/png,rawbytes"), "messages[0].content[1].image_url.url", "invalid_value"),
        (image_part("https://a.example/x.png", "ultra"), "messages[0].content[1].image_url.detail", "invalid_value"),
        (
            {"type": "image_url", "image_url": "https://a.example/x.png"},
            "messages[0].content[1].image_url",
            "invalid_type",
        ),
        (
            {"type": "input_image", "image_url": "https://a.example/x.png"},
            "messages[0].content[1].type",
            "invalid_value",
        ),
    ],
)
def test_a_malformed_image_part_is_a_400_line(part, param, code):
    result = chat(part)
    assert result.status_code == 400, result.body
    assert result.body["error"]["param"] == param and result.body["error"]["code"] == code
