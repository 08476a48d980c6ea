"""How the trigger polls: one plain HTTP client per connection with the SDK's base URL and auth, at most
POLL_CONCURRENCY polls in flight."""

import asyncio

from openai import AsyncOpenAI

from openai_batch.triggers import POLL_CONCURRENCY, Poller


def test_a_static_key_polls_over_plain_http_with_the_sdks_url_and_headers():
    async def build() -> Poller:
        return Poller.of(AsyncOpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1"))

    poller = asyncio.run(build())
    assert poller.http is not None
    assert str(poller.http.base_url) == "http://127.0.0.1:9/v1/"
    assert poller.http.headers["authorization"] == "Bearer sk-test"
    assert poller.http.headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert poller.gate._value == POLL_CONCURRENCY == 4


def test_without_a_static_key_polls_go_through_the_sdk():
    class SignedPerRequest(AsyncOpenAI):  # as with a credential provider: no static auth header
        @property
        def auth_headers(self) -> dict[str, str]:
            return {}

    poller = Poller.of(SignedPerRequest(api_key="unused", base_url="http://127.0.0.1:9/v1"))
    assert poller.http is None and poller.sdk.base_url.host == "127.0.0.1"
