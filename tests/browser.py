"""Browser tests' parts: the app served on 127.0.0.1 by a real HTTP server, and Debian's headless
Chromium driven by Playwright at a phone's viewport. Screenshots go to ARTIFACTS_DIR (default
`artifacts/` in the checkout), kept by CI as test artefacts."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's hosts, which this closed
# network refuses; none of them changes what a page does.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36"
)
WECHAT_UA = ANDROID_UA + " MicroMessenger/8.0.44.2502(0x28002C51) NetType/WIFI Language/zh_CN"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR") or Path(__file__).resolve().parent.parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 (threaded, like the development server); yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright; fails loudly when it is not installed (CI installs it)."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
