"""Per-address rate limiting of the HTTP APIs and sign-in pages: past `IP_REQUESTS_PER_MINUTE` requests a
minute from one client address, a polite 429 with `Retry-After` (JSON for `/api`, text elsewhere).

WeChat's own pushes (`/wechat`) come from Tencent's few addresses on behalf of every worker, so they are
limited per worker instead (`bot.ratelimit.worker_over_limit`, in the Inbox); the health check is never
limited. Behind a reverse proxy set `PROXY_COUNT` so the worker's address, not the proxy's, is the key.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.ratelimit import SlidingWindow

LIMITED_PREFIXES = ("/api/", "/console/login", "/m/oauth/")


def init_app(app: Flask) -> None:
    """Install the limiter (and the proxy fix, when the service sits behind `PROXY_COUNT` proxies)."""
    proxies = int(app.config["PROXY_COUNT"])
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    window = SlidingWindow(int(app.config["IP_REQUESTS_PER_MINUTE"]))
    app.extensions["workerlaw.ip_limit"] = window

    @app.before_request
    def _limit():
        if not request.path.startswith(LIMITED_PREFIXES):
            return None
        wait = window.hit(request.remote_addr or "unknown", time.monotonic())
        if wait is None:
            return None
        message = current_app.extensions["workerlaw.engine"].kb.replies["rate_limited"]
        current_app.logger.warning("rate limit: %s over %s requests a minute", request.path, window.limit)
        if request.path.startswith("/api/"):
            response = jsonify(error="rate_limited", message=message)
        else:
            response = current_app.response_class(message, mimetype="text/plain")
        response.status_code = 429
        response.headers["Retry-After"] = str(max(math.ceil(wait), 1))
        return response
