"""The OpenAPI 3 document of `/api/mp`, served at `/api/mp/openapi.json`; a test keeps it in step with
the routes (every route documented, nothing documented that does not exist). Its building blocks
(`ERROR`, `BEARER`, `json_content`, `error_responses`, `request_body`) serve the staff API's document too."""

from __future__ import annotations

ERROR = {"$ref": "#/components/schemas/Error"}
BEARER = [{"bearer": []}]


def json_content(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def error_responses(*codes: int) -> dict:
    return {str(c): {"description": "error", **json_content(ERROR)} for c in codes}


def request_body(properties: dict, required: list[str], *, optional_body: bool = False) -> dict:
    return {
        "required": not optional_body,
        **json_content(
            {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
        ),
    }


TEXT = {"type": "string", "minLength": 1, "maxLength": 500}
OK = {"200": {"description": "ok", **json_content({"type": "object"})}}

SPEC: dict = {
    "openapi": "3.0.3",
    "info": {"title": "workerlaw mini-program API", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "paths": {
        "/api/mp/openapi.json": {"get": {"summary": "This document", "responses": OK}},
        "/api/mp/topics": {
            "get": {"summary": "Topics with short descriptions", "responses": {**OK, **error_responses(400)}}
        },
        "/api/mp/faq": {
            "get": {
                "summary": "FAQ entries of a topic or matching q (through the engine), paginated",
                "parameters": [
                    {"name": "category", "in": "query", "schema": {"type": "string"}},
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    {
                        "name": "per_page",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 50},
                    },
                ],
                "responses": {**OK, **error_responses(400)},
            }
        },
        "/api/mp/faq/{faq_id}": {
            "get": {
                "summary": "One entry with the text of every article it cites",
                "parameters": [
                    {"name": "faq_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {**OK, **error_responses(400, 404)},
            }
        },
        "/api/mp/login": {
            "post": {
                "summary": "Exchange a wx.login code for a signed token",
                "requestBody": request_body(
                    {"code": {"type": "string", "minLength": 1, "maxLength": 128}}, ["code"]
                ),
                "responses": {**OK, **error_responses(400, 401, 503)},
            }
        },
        "/api/mp/login/methods": {
            "get": {
                "summary": "How the mobile page signs in: web OAuth URL when configured, else one-time codes",
                "responses": {**OK, **error_responses(400)},
            }
        },
        "/api/mp/login/code": {
            "post": {
                "summary": "Sign in on the mobile page with a one-time code staff issued",
                "requestBody": request_body(
                    {"code": {"type": "string", "minLength": 1, "maxLength": 32}}, ["code"]
                ),
                "responses": {**OK, **error_responses(400, 401, 403)},
            }
        },
        "/api/mp/subscriptions": {
            "get": {
                "summary": "The reply template to request with wx.requestSubscribeMessage; my unused grants",
                "security": BEARER,
                "responses": {**OK, **error_responses(400, 401)},
            },
            "post": {
                "summary": "Record templates I accepted (each allows one message beyond 48 hours)",
                "security": BEARER,
                "requestBody": request_body(
                    {
                        "template_ids": {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "maxItems": 3,
                        }
                    },
                    ["template_ids"],
                ),
                "responses": {**OK, **error_responses(400, 401)},
            },
        },
        "/api/mp/privacy": {
            "get": {"summary": "The privacy notice and its version", "responses": OK},
            "post": {
                "summary": "Accept the privacy notice",
                "security": BEARER,
                "requestBody": request_body({"version": {"type": "string"}}, ["version"]),
                "responses": {**OK, **error_responses(400, 401, 409)},
            },
        },
        "/api/mp/ask": {
            "post": {
                "summary": "Ask a question (answer, numbered choices, or the on-duty lawyer)",
                "security": BEARER,
                "requestBody": request_body({"text": TEXT}, ["text"]),
                "responses": {**OK, **error_responses(400, 401, 403)},
            }
        },
        "/api/mp/worker-types": {
            "get": {
                "summary": "The kinds of work a worker can pick (外卖骑手, 快递员, ...)",
                "responses": {**OK, **error_responses(400)},
            }
        },
        "/api/mp/me/worker-type": {
            "put": {
                "summary": "Pick my kind of work (asked once, with one tap, after a first answer)",
                "security": BEARER,
                "requestBody": request_body({"type": {"type": "string"}}, ["type"]),
                "responses": {**OK, **error_responses(400, 401)},
            }
        },
        "/api/mp/consultations": {
            "get": {
                "summary": "My consultations",
                "security": BEARER,
                "responses": {**OK, **error_responses(401)},
            }
        },
        "/api/mp/consultations/{consultation_id}": {
            "get": {
                "summary": "One consultation with its transcript",
                "security": BEARER,
                "parameters": [
                    {"name": "consultation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {**OK, **error_responses(401, 404)},
            }
        },
        "/api/mp/consultations/{consultation_id}/messages": {
            "post": {
                "summary": "A follow-up in an open consultation",
                "security": BEARER,
                "parameters": [
                    {"name": "consultation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "requestBody": request_body({"text": TEXT}, ["text"]),
                "responses": {**OK, **error_responses(400, 401, 403, 404, 409)},
            }
        },
        "/api/mp/consultations/{consultation_id}/rating": {
            "post": {
                "summary": "Rate the help, 1 to 5 stars",
                "security": BEARER,
                "parameters": [
                    {"name": "consultation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "requestBody": request_body(
                    {"stars": {"type": "integer", "minimum": 1, "maximum": 5}}, ["stars"]
                ),
                "responses": {**OK, **error_responses(400, 401, 404)},
            }
        },
        "/api/mp/me": {
            "delete": {
                "summary": "Erase my personal data and message texts",
                "security": BEARER,
                "responses": {**OK, **error_responses(401)},
            }
        },
    },
}
