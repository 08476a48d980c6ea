"""Which vendor a connection means, and a third party's vendor found through its entry point."""

import sys
from types import SimpleNamespace

import pytest

from openai_batch import vendors
from openai_batch.vendors import UnknownVendor, vendor_class, vendor_name_of, vendor_names


def conn(conn_type="openai", host=None, **extra):
    return SimpleNamespace(conn_id="c", conn_type=conn_type, host=host, extra_dejson=extra)


@pytest.mark.parametrize(
    ("connection", "name"),
    [
        (conn(host="https://api.openai.com/v1"), "openai"),
        (conn(host="http://127.0.0.1:8000/v1"), "openai"),
        (conn(), "openai"),
        (conn(host="https://my-res.openai.azure.com"), "azure"),
        (conn(host="my-res.cognitiveservices.azure.com/openai/v1/"), "azure"),
        (conn(openai_client_kwargs={"base_url": "https://x.services.ai.azure.com/openai/v1/"}), "azure"),
        (conn(host="http://127.0.0.1:8000/openai/v1", vendor="azure"), "azure"),  # e.g. the emulator
        (conn("anthropic"), "anthropic"),
        (conn("anthropic", vendor="Anthropic"), "anthropic"),
    ],
)
def test_a_connection_names_its_vendor(connection, name):
    assert vendor_name_of(connection) == name
    assert vendor_class(name).name == name


def test_unknown_vendors_and_connection_types_fail_naming_the_known_ones():
    with pytest.raises(UnknownVendor, match="known: openai, azure, anthropic"):
        vendor_name_of(conn(vendor="gemini"))
    with pytest.raises(UnknownVendor, match="type 'postgres'"):
        vendor_name_of(conn("postgres"))


def test_limits_follow_the_vendor():
    limits = {name: vendor_class(name).limits for name in ("openai", "azure", "anthropic")}
    assert {n: (lim.max_requests, lim.max_bytes) for n, lim in limits.items()} == {
        "openai": (50_000, 200_000_000),
        "azure": (100_000, 200_000_000),
        "anthropic": (100_000, 240_000_000),  # of OpenAI-shaped lines: the converted body stays under 256 MB
    }
    assert not limits["anthropic"].embeddings and not limits["anthropic"].metadata
    assert limits["openai"].expires and limits["anthropic"].expires and not limits["azure"].expires


def test_a_third_party_vendor_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """A package declaring ``[project.entry-points."openai_batch.vendors"] acme = "acme_batch:AcmeVendor"``."""
    (tmp_path / "acme_batch.py").write_text(
        "from openai_batch.vendors.openai import OpenAIVendor\n\n"
        "class AcmeVendor(OpenAIVendor):\n    name = 'acme'\n    title = 'Acme'\n    conn_types = ('acme',)\n"
    )
    info = tmp_path / "acme_batch-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-batch\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[openai_batch.vendors]\nacme = acme_batch:AcmeVendor\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    vendors._entry_points.cache_clear()
    try:
        assert vendor_names() == ["openai", "azure", "anthropic", "acme"]
        assert vendor_name_of(conn("acme")) == "acme"  # its connection type
        assert vendor_name_of(conn(vendor="acme")).startswith("acme")
        assert vendor_class("acme").title == "Acme"
    finally:
        vendors._entry_points.cache_clear()
        sys.modules.pop("acme_batch", None)
