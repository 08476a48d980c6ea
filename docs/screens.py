"""Screenshots of the Airflow UI of a running ``make demo`` stack, taken with headless Chromium.

Run ``make demo`` first, then ``.venv/bin/python docs/screens.py [--out docs]``. Chromium is driven through the
DevTools protocol (the trigger form is a modal opened by a button). Saves trigger.png, grid.png, mapped.png and
report.png; exits 2 with one line when the stack is not running or Chromium is missing.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "openai_batch_inference"
WIDTH, HEIGHT = 1600, 1000


class Fail(Exception):
    """A one-line reason to give up."""


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise Fail(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait(self, expression: str, timeout: float) -> None:
        """Poll a JS condition until true, then let the page settle (animations, late requests)."""
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(0.5)
        time.sleep(1.5)

    def click(self, expression: str) -> None:
        """A real mouse click on the element ``expression`` finds (some widgets ignore ``element.click()``)."""
        found = self.js(
            f"(() => {{ const e = ({expression}); if (!e) return null; const r = e.getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        if not found:
            raise TimeoutError(expression)  # not there (yet): the page is retried
        x, y = found
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def shot(self, path: Path) -> int:
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return len(data)


def find_chromium() -> str:
    binary = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if not binary:
        raise Fail("chromium not found: apt-get install -y chromium")
    return binary


@contextmanager
def chromium(binary: str) -> Iterator[Page]:
    """Start headless Chromium with a throwaway profile and yield its first tab; always stop it."""
    with tempfile.TemporaryDirectory(prefix="screens-", ignore_cleanup_errors=True) as profile:
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
        args += [f"--window-size={WIDTH},{HEIGHT}", "--remote-debugging-port=0", f"--user-data-dir={profile}"]
        proc = subprocess.Popen(
            [binary, *args, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(100):
                if port_file.exists() and port_file.read_text().strip():
                    break
                time.sleep(0.1)
            else:
                raise Fail("chromium did not open its DevTools port")
            port = port_file.read_text().split()[0]
            tab = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
            with connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
                page = Page(ws)
                page.send("Page.enable")
                page.send(
                    "Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False
                )
                yield page
        finally:  # Chromium's helpers share its process group
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def find_stack(root: Path, url: str | None, run_id: str | None) -> tuple[str, str, Path]:
    """The API URL (from the api-server log ``make demo`` writes), the last run id and its report.html."""
    if not url:
        log = root / "logs" / "api-server.log"
        found = (
            re.findall(r"Uvicorn running on (http://[\d.:]+)", log.read_text(errors="replace")) if log.exists() else []
        )
        if not (root / "pids.json").exists() or not found:
            raise Fail(f"no demo stack is running under {root}: run `make demo` first (or pass --url)")
        url = found[-1]
    try:
        httpx.get(f"{url}/api/v2/monitor/health", timeout=5).raise_for_status()
        if not run_id:
            runs = httpx.get(
                f"{url}/api/v2/dags/{DAG_ID}/dagRuns", params={"order_by": "-start_date", "limit": 1}, timeout=10
            ).json()["dag_runs"]
            if not runs:
                raise Fail(f"{DAG_ID} has no run yet: run `make demo` first")
            run_id = runs[0]["dag_run_id"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise Fail(f"the Airflow API at {url} does not answer ({exc}): run `make demo` first") from None
    reports = sorted((root / "data" / "staging" / DAG_ID).glob(f"*/{run_id}/report/report.html"))
    if not reports:
        raise Fail(f"run {run_id} has no report.html under {root / 'data' / 'staging'}")
    return url, run_id, reports[-1]


def capture(
    page: Page, path: Path, url: str, ready: str, action: str | Callable[[Page], None] = "", after: str = "true"
) -> None:
    """Open ``url``, wait for ``ready``, run ``action`` (JS) and wait for ``after``, save a PNG; a blank or unready
    page is retried with longer waits."""
    waited = ready
    for timeout in (20, 45, 90):
        try:
            page.goto(url)
            page.wait(ready, timeout)
            if callable(action):
                action(page)
            elif action:
                page.js(action)
            page.wait(after, timeout)
            if page.shot(path) > 20_000:  # a blank page is a few KB
                print(f"saved {path} ({path.stat().st_size // 1024} KB)")
                return
        except TimeoutError as exc:
            waited = str(exc)
    raise Fail(f"{path.name}: {url} did not render (waited for {waited})")


def text_has(*words: str) -> str:
    """A JS condition: the page text contains every word and no spinner is showing."""
    checks = " && ".join(f"t.includes({json.dumps(w)})" for w in words)
    return f"(() => {{ const t = document.body ? document.body.innerText : ''; return {checks} && !document.querySelector('.chakra-spinner'); }})()"


CLICK_TRIGGER = "document.querySelector('button[aria-label=\"Trigger Dag\"]')?.click()"
EXPAND_GROUPS = "document.querySelector('button[aria-label=\"Expand all task groups\"]')?.click()"
FORM = "[...document.querySelectorAll('[role=dialog]')].find(d => d.innerText.includes('Structured output'))"


def open_trigger_form(page: Page) -> None:
    """Open the trigger form and its first Param section (the sections start collapsed)."""
    page.js(CLICK_TRIGGER)
    page.wait(f"!!{FORM}", 20)
    page.click(f"[...{FORM}.querySelectorAll('button')].find(b => b.innerText.trim() === 'Input')")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "docs"), help="directory for the PNGs")
    parser.add_argument("--root", default=str(REPO / ".demo"), help="the demo stack's directory")
    parser.add_argument("--url", help="Airflow UI/API base URL (default: from the running demo)")
    parser.add_argument("--run-id", help="run to show (default: the DAG's latest run)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        binary = find_chromium()
        url, run_id, report = find_stack(Path(args.root), args.url, args.run_id)
        run = f"{url}/dags/{DAG_ID}/runs/{run_id}"
        with chromium(binary) as page:
            capture(
                page,
                out / "trigger.png",
                f"{url}/dags/{DAG_ID}",
                text_has(DAG_ID, "Trigger"),
                open_trigger_form,
                f"{FORM}.innerText.includes('Partition format')",  # a Param's title: the section is open
            )
            capture(page, out / "grid.png", run, text_has(run_id, "batch", "load"), EXPAND_GROUPS)
            mapped = f"{run}/tasks/batch.submit/mapped"
            capture(page, out / "mapped.png", mapped, text_has("Map Index", "submit"), EXPAND_GROUPS)
            capture(
                page,
                out / "report.png",
                report.as_uri(),
                "!!document.querySelector('img') && document.querySelector('img').complete",
            )
    except Fail as exc:
        print(f"screens: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
