"""The bare Flask baseline for `bench/load_bench.py`: one POST route that answers `success`.

Served exactly like the real service (`gunicorn ... 'bench.bare_app:create_app()'`), so the ratio of
the webhook's throughput to this one's says what the service itself costs on top of gunicorn, Flask
and the HTTP round trip.
"""

from __future__ import annotations

from flask import Flask, Response


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/wechat")
    def receive():
        return Response("success", mimetype="text/plain")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
