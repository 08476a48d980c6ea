"""Image cells: URLs kept as they are, image bytes sent as data URLs of the sniffed type, sizes read from the
images themselves, and every unusable cell named with its column and reason."""

import base64
import io

import pyarrow as pa
import pytest
from PIL import Image

from batchkit.errors import InputError
from batchkit.split.images import image_cells, sniff


def image_bytes(kind: str, size: tuple[int, int] = (40, 30), **save: object) -> bytes:
    """A real image of ``kind`` (PNG, JPEG, GIF, WEBP) written by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, kind, **save)
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    "kind,save",
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"exif": b"Exif\x00\x00" + bytes(60_000)}),
        ("JPEG", {"icc_profile": bytes(200_000)}),
        ("GIF", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_sniff_reads_type_and_size_of_real_images(kind, save):
    data = image_bytes(kind, (641, 359), **save)
    assert sniff(data) == (kind.lower(), (641, 359))


def test_sniff_refuses_what_is_not_an_image():
    assert sniff(b"%PDF-1.7 ...") == (None, None)
    assert sniff(b"") == (None, None)
    assert sniff(b"\x89PNG\r\n\x1a\n")[0] == "png"  # truncated: a PNG whose size is not known


def test_url_and_data_url_strings_are_sent_as_they_are():
    png = image_bytes("PNG", (64, 32))
    jpeg_behind_exif = image_bytes("JPEG", (20, 10), icc_profile=bytes(200_000))  # beyond the first read
    column = pa.array(
        [
            "https://cdn.example.com/a.jpg?sig=x%2F",
            "HTTP://example.com/b.png",
            data_url(png),
            data_url(jpeg_behind_exif),
        ]
    )
    cells = image_cells(column, "photo")
    assert cells.urls.to_pylist() == column.to_pylist()
    assert cells.width.tolist() == [0, 0, 64, 20] and cells.height.tolist() == [0, 0, 32, 10]
    assert cells.reasons == {}


def test_binary_cells_become_data_urls_of_their_sniffed_type():
    png, jpeg, gif, webp = (image_bytes(k, (17, 9)) for k in ("PNG", "JPEG", "GIF", "WEBP"))
    cells = image_cells(pa.array([png, jpeg, gif, webp], pa.large_binary()), "raw")
    assert cells.urls.to_pylist() == [
        data_url(png),
        data_url(jpeg, "image/jpeg"),
        data_url(gif, "image/gif"),
        data_url(webp, "image/webp"),
    ]
    assert cells.width.tolist() == [17] * 4 and cells.height.tolist() == [9] * 4 and not cells.reasons


def test_null_and_bad_cells_are_named_with_their_reason():
    png = image_bytes("PNG")
    strings = pa.array(
        [
            *(None, "", "ftp://x/y.png", "/local/file.png", "data:text/plain;base64,aGk=", "data:image/png,raw"),
            *("data:image/png;base64,@@@@", data_url(b"%PDF-1.7 not an image"), "https://ok.example/x.png"),
            data_url(png, "image/bmp"),
        ]
    )
    cells = image_cells(strings, "photo")
    assert cells.urls.to_pylist() == [None] * 8 + ["https://ok.example/x.png", None]
    assert cells.reasons == {
        0: "image column 'photo' is null",
        1: "image column 'photo': not an http(s) URL or a data:image/ URL",
        2: "image column 'photo': not an http(s) URL or a data:image/ URL",
        3: "image column 'photo': not an http(s) URL or a data:image/ URL",
        4: "image column 'photo': not an http(s) URL or a data:image/ URL",
        5: "image column 'photo': a data: URL must be base64 (data:image/<type>;base64,...)",
        6: "image column 'photo': its data: URL is not valid base64",
        7: "image column 'photo': not a PNG, JPEG, GIF or WebP image",
        9: "image column 'photo': a data: URL's type must be one of image/gif, image/jpeg, image/jpg, image/png, "
        "image/webp",
    }
    binary = image_cells(pa.array([png, None, b"GIF8 nope"], pa.binary()), "raw")
    assert binary.urls.to_pylist() == [data_url(png), None, None]
    assert binary.reasons == {
        1: "image column 'raw' is null",
        2: "image column 'raw': not a PNG, JPEG, GIF or WebP image",
    }


def test_dictionary_columns_are_read_and_other_types_refused():
    cells = image_cells(pa.array(["https://a/x.png", "https://a/x.png"]).dictionary_encode(), "u")
    assert cells.urls.to_pylist() == ["https://a/x.png"] * 2
    with pytest.raises(InputError, match=r"image column 'n' is of type int64: it must hold URLs"):
        image_cells(pa.array([1, 2]), "n")
