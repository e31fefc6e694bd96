"""Render a page in a real headless Chromium (Debian's ``chromium``): screenshot, DOM after load, console.

Chromium's own command line is enough for a static page: ``--screenshot`` and ``--dump-dom`` load it like a
user's browser would, and ``--enable-logging=stderr`` prints every console message and uncaught exception
as an ``INFO:CONSOLE`` line, which is how JavaScript errors are caught. Each call gets a fresh profile.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

CHROMIUM: Final = "/usr/bin/chromium"
FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_CONSOLE = re.compile(r":CONSOLE[:(]")


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    dom: str
    console: list[str]  # every console message / uncaught error the page produced


def available() -> bool:
    return Path(CHROMIUM).is_file() or shutil.which("chromium") is not None


def _run(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def render(page: Path, work: Path, timeout: float = 120.0) -> Rendered:
    url = page.resolve().as_uri()
    shot = work / "screenshot.png"
    taken = _run([f"--screenshot={shot}", "--window-size=1400,2400", url], work / "profile-shot", timeout)
    dumped = _run(["--dump-dom", url], work / "profile-dom", timeout)
    assert taken.returncode == 0 and dumped.returncode == 0, (taken.stderr[-2000:], dumped.stderr[-2000:])
    console = [line for out in (taken.stderr, dumped.stderr) for line in out.splitlines() if _CONSOLE.search(line)]
    return Rendered(shot, dumped.stdout, console)


class _TextById(HTMLParser):
    """Text content of every element that has an ``id`` (nested ids each get their own text)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("meta", "br", "img", "input", "link", "hr"):
            return
        ident = dict(attrs).get("id")
        self.stack.append(ident)
        if ident:
            self.text.setdefault(ident, [])

    def handle_endtag(self, tag: str) -> None:
        if self.stack and tag not in ("meta", "br", "img", "input", "link", "hr"):
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for ident in self.stack:
            if ident:
                self.text[ident].append(data.strip())


def text_by_id(dom: str) -> dict[str, list[str]]:
    """``{id: [non-empty text pieces in document order]}`` of the rendered DOM."""
    parser = _TextById()
    parser.feed(dom)
    return {k: [t for t in v if t] for k, v in parser.text.items()}
