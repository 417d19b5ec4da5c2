"""The OpenAPI document stays in step with the `/api/mp` routes."""

from __future__ import annotations

import re


def test_every_route_is_documented_and_nothing_else(app, client):
    spec = client.get("/api/mp/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/mp/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented


def test_the_error_shape_is_declared(client):
    spec = client.get("/api/mp/openapi.json").get_json()
    assert spec["components"]["schemas"]["Error"]["required"] == ["error", "message"]
