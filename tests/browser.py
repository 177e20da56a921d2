"""Headless Chromium for the tests: Debian's ``chromium`` package, driven over the DevTools protocol on a pipe.

The test set-up installs the Debian packages a browser test needs (``chromium``, and ``graphviz`` for the
process map) with apt-get when they are missing and this is root with apt-get, once per machine (a file lock
serialises the xdist workers); otherwise the caller skips, saying why.

Chromium runs with ``--remote-debugging-pipe``: the DevTools protocol as NUL-terminated JSON on file
descriptors 3 (commands) and 4 (answers and events), as Puppeteer and Playwright drive it. No port, no race
for one, no websocket library, and the browser dies with the pipe. Console messages, uncaught exceptions,
log entries (failed loads, blocked requests) and every request are collected from the protocol's events,
which is sturdier than parsing the browser's stderr.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TRAMPOLINE = """
import fcntl, os, sys
r, w = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(r, 3)
os.dup2(w, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""
#: program → Debian package
PACKAGES = {"chromium": "chromium", "dot": "graphviz"}
APT_TIMEOUT_S = 900


def missing_tools(programs: tuple[str, ...] = tuple(PACKAGES)) -> str | None:
    """Install what is missing of ``programs`` (as root, with apt-get); None when all is there, else why it is not."""
    wanted = {prog: PACKAGES[prog] for prog in programs if shutil.which(prog) is None}
    if not wanted:
        return None
    names = " ".join(sorted(set(wanted.values())))
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{', '.join(wanted)} not installed, and the test set-up installs Debian packages only as root with " \
               f"apt-get: run `apt-get install {names}`"  # fmt: skip
    lock = Path(tempfile.gettempdir()) / "dossier-audit-apt.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one worker installs; the others wait, then find the programs
        wanted = {prog: pkg for prog, pkg in wanted.items() if shutil.which(prog) is None}
        if not wanted:
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *sorted(set(wanted.values()))]
        out = subprocess.run(install, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT_S)
        if out.returncode != 0:  # a fresh machine has no package lists yet
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=APT_TIMEOUT_S)
            out = subprocess.run(install, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT_S)
    still = [prog for prog in wanted if shutil.which(prog) is None]
    if still:
        return f"`{' '.join(install)}` did not install {', '.join(still)}: {(out.stderr or out.stdout)[-500:]}"
    return None


class BrowserError(RuntimeError):
    pass


class Page:
    """One tab of a headless Chromium, with every event it produced."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.proc, self._out, self._in = proc, to_browser, from_browser
        self._poller = select.poll()
        self._poller.register(from_browser, select.POLLIN)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            # poll, not select: under pytest-xdist a worker's descriptors pass 1024, which select cannot watch
            if left <= 0 or not self._poller.poll(left * 1000):
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe (exit {self.proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def send(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
            self.events.append(answer)

    def wait_for(self, method: str, *, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def settle(self, seconds: float = 0.5) -> None:
        """Collect what the page still logs for a moment after it loaded."""
        with contextlib.suppress(BrowserError):
            self.wait_for("Never.happens", timeout=seconds)

    def open(self, url: str, *, width: int = 1100) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        # No network: anything the page tried to fetch from outside would fail and be logged as an error.
        self.send("Network.emulateNetworkConditions",
                  {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})  # fmt: skip
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        self.settle()

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:60]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, top to bottom, as PNG."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (a failed load among them)."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails']}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@contextlib.contextmanager
def headless(profile: Path) -> Iterator[Page]:
    """A headless Chromium with its own profile directory, closed on exit."""
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    flags = ["--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             "--mute-audio", "--remote-debugging-pipe", f"--user-data-dir={profile}"]  # fmt: skip
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    browser = shutil.which("chromium")
    if browser is None:
        raise BrowserError("chromium is not installed")
    # The protocol's descriptors must be 3 and 4 in the browser: a small exec trampoline puts them there
    # (dash cannot redirect descriptors above 9, and preexec_fn is unsafe with threads).
    trampoline = [sys.executable, "-c", _TRAMPOLINE, str(to_r), str(from_w)]
    profile.mkdir(parents=True, exist_ok=True)
    log = (profile / "chromium.log").open("wb")  # its own chatter (D-Bus is absent in containers): for diagnosis
    proc = subprocess.Popen([*trampoline, browser, *flags, "about:blank"],
                            pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log)  # fmt: skip
    os.close(to_r)
    os.close(from_w)
    page = Page(proc, to_w, from_r)
    try:
        yield page
    finally:
        with contextlib.suppress(BrowserError, OSError):
            page.send("Browser.close", timeout=5)
        os.close(to_w)
        os.close(from_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
