"""The OpenAPI 3 document of the staff API (`/api`, the lawyers' console), served at `/api/openapi.json`;
a test keeps it in step with the routes (every route documented, nothing documented that does not exist)."""

from __future__ import annotations

from handlers.openapi import BEARER, error_responses, json_content, request_body
from models.ticket import OUTCOMES


def _ok(ref: str | None = None) -> dict:
    schema = {"$ref": f"#/components/schemas/{ref}"} if ref else {"type": "object"}
    return {"200": {"description": "ok", **json_content(schema)}}


TICKET_ID = [{"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}

TICKET = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["open", "claimed", "closed"]},
        "urgent": {"type": "boolean"},
        "region_id": {"type": "integer", "nullable": True},
        "region": {"type": "string", "nullable": True},
        "lawyer_id": {"type": "integer", "nullable": True},
        "question": {"type": "string", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "claimed_at": NULLABLE_TIME,
        "first_response_at": NULLABLE_TIME,
        "closed_at": NULLABLE_TIME,
        "outcome": {"type": "string", "nullable": True},
        "category": {"type": "string", "nullable": True},
        "waiting_minutes": {
            "type": "integer",
            "description": "minutes from creation to the first reply (or closing, or now)",
        },
    },
}


def _action(summary: str, body: dict | None, errors: tuple[int, ...], ok: str | None = "Ticket") -> dict:
    op = {
        "summary": summary,
        "security": BEARER,
        "parameters": TICKET_ID,
        "responses": {**_ok(ok), **error_responses(*errors)},
    }
    if body is not None:
        op["requestBody"] = body
    return {"post": op}


SPEC: dict = {
    "openapi": "3.0.3",
    "info": {"title": "workerlaw staff API (lawyers' console)", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            },
            "Ticket": TICKET,
        },
    },
    "paths": {
        "/api/openapi.json": {"get": {"summary": "This document", "responses": _ok()}},
        "/api/login": {
            "post": {
                "summary": "Username and password for a bearer token (12 hours; 5 wrong passwords lock it)",
                "requestBody": request_body(
                    {
                        "username": {"type": "string", "minLength": 1, "maxLength": 64},
                        "password": {"type": "string", "minLength": 1, "maxLength": 256},
                    },
                    ["username", "password"],
                ),
                "responses": {**_ok(), **error_responses(400, 401)},
            }
        },
        "/api/me": {
            "get": {
                "summary": "The signed-in user",
                "security": BEARER,
                "responses": {**_ok(), **error_responses(401)},
            }
        },
        "/api/tickets": {
            "get": {
                "summary": "The queue (urgent first, then longest waiting) of the tickets I may see",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["open", "closed", "any"], "default": "open"},
                    },
                    {
                        "name": "view",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "enum": ["all", "mine", "regions", "unassigned"],
                            "default": "all",
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "ok",
                        **json_content(
                            {
                                "type": "object",
                                "properties": {
                                    "items": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Ticket"},
                                    }
                                },
                            }
                        ),
                    },
                    **error_responses(400, 401),
                },
            }
        },
        "/api/tickets/{ticket_id}": {
            "get": {
                "summary": "One ticket with case card, transcript, events and WeChat's sending budget",
                "security": BEARER,
                "parameters": TICKET_ID,
                "responses": {**_ok(), **error_responses(400, 401, 404)},
            }
        },
        "/api/tickets/{ticket_id}/claim": _action(
            "Take the ticket (lawyers only; 409 when another lawyer holds it)",
            request_body({}, [], optional_body=True),
            (400, 401, 403, 404, 409),
        ),
        "/api/tickets/{ticket_id}/reply": _action(
            "Reply to the worker; `delivery.via` says how it reaches them",
            request_body({"text": {"type": "string", "minLength": 1, "maxLength": 2000}}, ["text"]),
            (400, 401, 404, 409),
            ok=None,
        ),
        "/api/tickets/{ticket_id}/transfer": _action(
            "Hand the ticket to another lawyer or another region's queue (exactly one of the two)",
            request_body(
                {
                    "lawyer_id": {"type": "integer", "minimum": 1},
                    "region_id": {"type": "integer", "minimum": 1},
                    "reason": {"type": "string", "maxLength": 500},
                },
                [],
            ),
            (400, 401, 403, 404, 409),
        ),
        "/api/tickets/{ticket_id}/note": _action(
            "An internal note (never shown to the worker)",
            request_body({"text": {"type": "string", "minLength": 1, "maxLength": 2000}}, ["text"]),
            (400, 401, 404),
            ok=None,
        ),
        "/api/tickets/{ticket_id}/close": _action(
            "Close with an outcome and the labour category (or null); the worker is asked to rate",
            request_body(
                {
                    "outcome": {"type": "string", "enum": list(OUTCOMES)},
                    "category": {"type": "string", "nullable": True},
                },
                ["outcome"],
            ),
            (400, 401, 404, 409),
        ),
        "/api/tickets/{ticket_id}/refer": _action(
            "Refer for legal aid to the district union above the worker's region",
            request_body({"reason": {"type": "string", "minLength": 1, "maxLength": 500}}, ["reason"]),
            (400, 401, 404, 409),
            ok=None,
        ),
    },
}
