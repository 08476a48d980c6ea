"""How the batch trigger polls: per connection and event loop, one client shared by all the loop's triggers.

The triggerer runs all its triggers in one event loop, so 1,000 waits share one connection pool instead of each
building a client (and its TLS context). The shared client is rebuilt every ``CLIENT_REFRESH_SECONDS`` (a rotated
key is picked up) and closed when the last trigger using it ends: a client never outlives its event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
import orjson

from openai_batch.hooks import TRANSIENT

if TYPE_CHECKING:
    from openai_batch.vendors.base import BatchVendor

POLL_TIMEOUT_SECONDS = 30.0  # one status request; the SDK's default 600 s would stall a deadline by minutes
POLL_RETRIES = 1  # inside one poll through the SDK (credential providers); the trigger backs off and tries again
CLIENT_REFRESH_SECONDS = 900.0  # a shared client is rebuilt this often, so a rotated key is picked up
RETIRE_SECONDS = 60.0  # a replaced client is closed this much later (polls still on it finish), and a rebuild that
# failed is tried again this much later (the triggers poll on with the client they have)
POLL_CONCURRENCY = 4  # status polls in flight at once per connection and triggerer loop, i.e. HTTP connections.
# At ~200 ms per poll against api.openai.com that is 20 polls/s: 1,000 waits at the default 60 s interval.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
log = logging.getLogger(__name__)


class PollRefused(Exception):
    """The API answered a poll with a status worth trying again later (rate limit, server error)."""


class PollFailed(Exception):
    """The API answered a poll with an error that trying again will not mend (e.g. 401, 404)."""


class PollGone(PollFailed):
    """The API has no such batch (404): deleted once its answers were recorded, or never made."""


# What a poll raises that the trigger waits out (it backs off and polls again): the SDK's transient errors (polls
# through the SDK) and aiohttp's transport errors: no connection, a timeout, a cut or malformed answer, a proxy's
# refusal (aiohttp.ClientResponseError: no status check raises it here, see Poller.status).
POLL_ERRORS = (
    *TRANSIENT,
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
    TimeoutError,
    PollRefused,
)


def env_proxy(url: str) -> str | None:
    """The proxy for ``url`` from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), as httpx and so
    the SDK take it. Read once per client: aiohttp's own ``trust_env`` reads it, and ~/.netrc, in a thread at every
    request (and refuses a request whose host has a netrc entry, as it also carries an Authorization header)."""
    parts = urlsplit(url)
    if not parts.hostname or proxy_bypass_environment(parts.hostname):
        return None
    proxies = getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return None if not proxy else proxy if "://" in proxy else f"http://{proxy}"


def sdk_trust(client: Any) -> ssl.SSLContext:
    """A TLS context trusting what the SDK's own HTTP client trusts: ``httpx2`` (openai 3) the system's CA store,
    ``httpx`` (older SDKs) certifi's; both honour SSL_CERT_FILE and SSL_CERT_DIR."""
    kinds = (kind.__module__.partition(".")[0] for kind in type(client._client).__mro__)  # the SDK's own subclass first
    return importlib.import_module(next((k for k in kinds if k in ("httpx2", "httpx")), "httpx")).create_ssl_context()


@dataclass(eq=False)
class Poller:
    """One connection's clients: the SDK client (cancels, and polls when auth is not a static header), an
    aiohttp session for the status polls, and a gate bounding the polls in flight; ``vendor`` is the connection's
    adapter: where a batch is (``status_path``) and how its JSON maps onto an OpenAI batch's (``batch_view``).

    A poll is a GET of ``batches/{id}`` (Anthropic: ``v1/messages/batches/{id}``). Built by the SDK it cost a third of the poll's CPU at 1,000 waits
    (request options, header merging, retry wrapper); a plain httpx GET still cost twice an aiohttp GET
    (httpcore's pool and anyio). So polls use the SDK's own base URL, query and headers on an aiohttp session,
    with the SDK's CA trust (``sdk_trust``) and the proxy the environment names (``env_proxy``). Clients whose
    auth is not a static header (credential providers) poll through the SDK.
    """

    sdk: Any
    http: aiohttp.ClientSession | None
    vendor: Any = None  # the BatchVendor (None: OpenAI's shapes)
    url: str = ""  # the SDK's base URL
    query: str = ""  # the SDK's default query, e.g. "?api-version=..."
    proxy: str | None = None
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(POLL_CONCURRENCY))

    def __post_init__(self) -> None:
        if self.vendor is None:
            from openai_batch.vendors.openai import OpenAIVendor

            self.vendor = OpenAIVendor("")  # its shapes need no connection

    @classmethod
    def of(cls, client: Any, vendor: BatchVendor | None = None) -> Poller:
        """The pollers of an SDK client (of ``vendor``, default OpenAI); inside the running event loop, which the
        session is bound to."""
        auth = client.auth_headers  # empty when a credential provider signs each request
        if client.custom_auth is not None or not auth:
            return cls(sdk=client, http=None, vendor=vendor)
        headers = {**{k: v for k, v in client.default_headers.items() if isinstance(v, str)}, **auth}
        url, query = str(client.base_url), urlencode(client.default_query, doseq=True)
        connector = aiohttp.TCPConnector(limit=POLL_CONCURRENCY, ssl=sdk_trust(client))
        timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT_SECONDS)  # the gate is waited for before it starts
        http = aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout)
        query = f"?{query}" if query else ""
        return cls(sdk=client, http=http, url=url, query=query, proxy=env_proxy(url), vendor=vendor)

    async def status(self, batch_id: str) -> dict[str, Any]:
        """The batch as an OpenAI batch's plain JSON (a poll needs its status and counts only: no SDK model is
        built)."""
        async with self.gate:
            if self.http is None:
                return self.vendor.batch_view(orjson.loads(await self.vendor.araw_status(self.sdk, batch_id)))
            url = f"{self.url.rstrip('/')}/{self.vendor.status_path(batch_id)}{self.query}"
            async with self.http.get(url, proxy=self.proxy, allow_redirects=False) as response:
                body = await response.read()  # read even when refused: the connection stays reusable
        if response.status in RETRYABLE_STATUSES:
            raise PollRefused(f"HTTP {response.status}")
        if response.status == 404:
            raise PollGone(f"HTTP 404 polling batch {batch_id}")
        if not 200 <= response.status < 300:  # the message names no header: the key stays out of logs
            raise PollFailed(f"HTTP {response.status} polling batch {batch_id}")
        return self.vendor.batch_view(orjson.loads(body))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.sdk.close()


@dataclass(eq=False)
class Pollers:
    """A connection's pollers on one event loop: the current one, the ones it replaced (closed RETIRE_SECONDS
    later), and how many triggers use them (the last one to stop closes them all)."""

    conn_id: str
    current: Poller | None = None
    fresh_until: float = 0.0
    making: asyncio.Task | None = None
    retired: list[Poller] = field(default_factory=list)
    closing: set[asyncio.Task] = field(default_factory=set)
    users: int = 0

    async def get(self) -> Poller:
        """The current poller; ask at each poll, as it is rebuilt every ``CLIENT_REFRESH_SECONDS``."""
        if self.current is None or time.monotonic() >= self.fresh_until:
            if self.making is None:  # triggers asking together wait for one build
                self.making = asyncio.ensure_future(self._rebuild())
                self.making.add_done_callback(self._made)
            await asyncio.shield(self.making)
        assert self.current is not None
        return self.current

    async def _rebuild(self) -> None:
        from openai_batch.vendors import afor_connection

        try:
            vendor = await afor_connection(self.conn_id)  # read at each rebuild: a connection may change vendor
            client = await vendor.aclient()
            poller = Poller.of(client.with_options(timeout=POLL_TIMEOUT_SECONDS, max_retries=POLL_RETRIES), vendor)
        except Exception as exc:
            if self.current is None:
                raise
            kind = type(exc).__name__  # not its text
            log.warning("could not rebuild the client of %s (%s); polling on with the current one", self.conn_id, kind)
            self.fresh_until = time.monotonic() + RETIRE_SECONDS
            return
        old, self.current = self.current, poller
        self.fresh_until = time.monotonic() + CLIENT_REFRESH_SECONDS
        if old is not None:  # polls still running on it get RETIRE_SECONDS to finish
            self.retired.append(old)
            asyncio.get_running_loop().call_later(RETIRE_SECONDS, self._retire, old)

    def _made(self, task: asyncio.Task) -> None:
        self.making = None
        if not task.cancelled():
            task.exception()  # retrieved: its waiters got it, or it was a first build nobody waits for any more

    def _retire(self, poller: Poller) -> None:
        if poller in self.retired:
            self.retired.remove(poller)
            closing = asyncio.ensure_future(poller.close())
            self.closing.add(closing)
            closing.add_done_callback(self.closing.discard)

    async def close(self) -> None:
        """Close every client (the last trigger using them stopped), after a build still running."""
        if self.making is not None:
            await asyncio.wait([self.making])
        pollers = [p for p in (self.current, *self.retired) if p is not None]
        self.current, self.retired = None, []
        await asyncio.gather(*(p.close() for p in pollers), *self.closing, return_exceptions=True)


_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Pollers]] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def polling(conn_id: str) -> AsyncIterator[Pollers]:
    """The shared pollers of ``conn_id`` on the running event loop, in use until the block ends; the last block
    to end closes them (the next one builds new ones)."""
    loop = asyncio.get_running_loop()
    shared = _pollers.setdefault(loop, {})
    pollers = shared.get(conn_id) or shared.setdefault(conn_id, Pollers(conn_id))
    pollers.users += 1
    try:
        yield pollers
    finally:
        pollers.users -= 1
        if not pollers.users:
            if shared.get(conn_id) is pollers:
                del shared[conn_id]
            await pollers.close()
