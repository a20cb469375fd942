"""Headless Chromium (Debian's package) driven over the DevTools protocol: open a page,
and report what a person's browser would have done with it: the requests it made, the
console errors and uncaught exceptions (a Content-Security-Policy violation is one),
how long it took to load, what the DOM holds, and a screenshot.

Only loopback is used: Chromium listens on 127.0.0.1 on a port it picks, and the page is
a file:// URL."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


@dataclass
class PageVisit:
    url: str
    load_seconds: float
    requests: list[str] = field(default_factory=list)  # every URL but the page's own
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, CSP


class Browser:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.profile = workdir / "profile"
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its helper processes go with it (close())
        )
        port = self._port()
        # straight to loopback, whatever proxy the environment names
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t.get("type") == "page"]
        self.socket = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"],
            timeout=60,
            suppress_origin=True,
            http_no_proxy=["127.0.0.1"],
        )
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _port(self) -> int:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if active.exists() and active.read_text().strip():
                return int(active.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port in 30 s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        number = self.next_id
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(method)

    def visit(self, page: Path, width: int = 1400, height: int = 1000) -> PageVisit:
        self.events.clear()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        url = page.resolve().as_uri()
        started = time.monotonic()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        visit = PageVisit(url, time.monotonic() - started)
        self.evaluate("1")  # lets late console messages arrive before they are read
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                requested = params["request"]["url"]
                if requested != url:
                    visit.requests.append(requested)
            elif method == "Runtime.exceptionThrown":
                visit.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                visit.errors.append(json.dumps(params.get("args", []))[:500])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                visit.errors.append(params["entry"].get("text", "")[:500])
        return visit

    def evaluate(self, expression: str) -> Any:
        """The value of `expression` (a promise's, once settled)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:500])
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        options: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            options["clip"] = {
                "x": 0,
                "y": 0,
                "width": size[0],
                "height": min(size[1], 4000),
                "scale": 1,
            }
            options["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **options)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.socket.close()
        # the whole session: renderer, zygote and GPU helpers still write the profile
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    """A headless Chromium for the duration; its profile in a temporary directory."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("no chromium on PATH")
    # a helper that outlived the kill must not fail the test with an undeletable profile
    with tempfile.TemporaryDirectory(
        prefix="needle-chromium-", ignore_cleanup_errors=True
    ) as workdir:
        started = Browser(binary, Path(workdir))
        try:
            yield started
        finally:
            started.close()
