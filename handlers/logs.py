"""The service's logs: one JSON object a line (or plain text with `LOG_FORMAT=text`), with mobile, ID and
card numbers masked (`bot.privacy.mask`) and the configured secrets — AppSecrets, the AES keys, the
push token, SECRET_KEY, the database password — and WeChat access tokens never written out, whatever
a message or a traceback contains."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, has_request_context, request

from bot.privacy import mask

SECRET_KEYS = (
    "SECRET_KEY",
    "WECHAT_TOKEN",
    "WECHAT_APPSECRET",
    "WECHAT_OAUTH_APPSECRET",
    "WECHAT_ENCODING_AES_KEY",
    "WECHAT_ENCODING_AES_KEY_PREVIOUS",
)
_TOKENS = re.compile(r"(access_token|session_key|password|secret)(\"?\s*[=:]\s*\"?)([^&\s\"',}]+)", re.I)
_MARK = "_workerlaw_handler"


class SafeFormatter(logging.Formatter):
    """Renders a record, then masks personal numbers and removes secrets from the whole line."""

    def __init__(self, secrets: list[str], *, as_json: bool):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        # Longest first, so a secret containing another is removed whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.as_json = as_json

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        text = _TOKENS.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
        return mask(text)

    def format(self, record: logging.LogRecord) -> str:
        if not self.as_json:
            return self.clean(super().format(record))
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if has_request_context():
            entry["method"], entry["path"] = request.method, request.path
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.clean(json.dumps(entry, ensure_ascii=False))


def init_app(app: Flask) -> None:
    """Send the root logger's records through one safe handler on stderr (installed once a process)."""
    secrets = [str(app.config.get(key) or "") for key in SECRET_KEYS]
    password = urlsplit(str(app.config.get("DATABASE_URL") or "")).password
    secrets.append(password or "")
    formatter = SafeFormatter(secrets, as_json=app.config["LOG_FORMAT"] == "json")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    handler.setFormatter(formatter)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    # Flask's own logger writes through the root handler (no second, unmasked handler of its own).
    app.logger.handlers.clear()
    app.logger.propagate = True
