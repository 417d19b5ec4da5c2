"""The OpenAPI 3 document of the staff API (`/api`, the lawyers' console), served at `/api/openapi.json`;
a test keeps it in step with the routes (every route documented, nothing documented that does not exist)."""

from __future__ import annotations

from bot.activities import KINDS
from bot.report_form import XLSX
from handlers.openapi import BEARER, error_responses, json_content, request_body
from models.activity import COUNT_FIELDS
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


# --- reports and the records staff enter -----------------------------------------------------------------

SCOPE = [
    {
        "name": "start",
        "in": "query",
        "schema": {"type": "string", "format": "date"},
        "description": "default: 1st of this month",
    },
    {
        "name": "end",
        "in": "query",
        "schema": {"type": "string", "format": "date"},
        "description": "default: today",
    },
    {
        "name": "region",
        "in": "query",
        "schema": {"type": "integer"},
        "description": "a region id; default: the union admin's own region (everywhere for an admin)",
    },
]
RECORD_ID = [{"name": "record_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_COUNT = {"type": "integer", "minimum": 0, "nullable": True}
RECORD_VALUES = {
    "region_id": {"type": "integer", "minimum": 1},
    "day": {"type": "string", "format": "date"},
    "online": {"type": "boolean", "default": False},
    "new_form": {"type": "boolean", "default": True, "description": "for 新就业形态劳动者"},
    "topic": {"type": "string", "enum": ["wage", "injury", "other"], "nullable": True},
    **{name: _COUNT for name in COUNT_FIELDS},
    "amount": {"type": "string", "description": "万元, up to two decimals", "nullable": True},
    "issuer": {"type": "string", "maxLength": 100, "nullable": True},
    "note": {"type": "string", "maxLength": 500, "nullable": True},
}
_REPORT_ERRORS = error_responses(400, 401, 403)
SPEC["paths"].update(
    {
        "/api/reports/summary": {
            "get": {
                "summary": "The union's counts for a period and region (sub-regions rolled up); union admins, admins",
                "security": BEARER,
                "parameters": SCOPE,
                "responses": {**_ok(), **_REPORT_ERRORS},
            }
        },
        "/api/reports/form.{fmt}": {
            "get": {
                "summary": "The 附件3 情况统计表 of the same scope as a file",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "fmt",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["xlsx", "csv"]},
                    },
                    *SCOPE,
                ],
                "responses": {
                    "200": {
                        "description": "the form",
                        "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}, "text/csv": {}},
                    },
                    **error_responses(400, 401, 403, 404),
                },
            }
        },
        "/api/records/kinds": {
            "get": {
                "summary": "The kinds of record and the figures each needs",
                "security": BEARER,
                "responses": {**_ok(), **error_responses(401)},
            }
        },
        "/api/records": {
            "get": {
                "summary": "Records entered for the scope, newest first",
                "security": BEARER,
                "parameters": SCOPE,
                "responses": {**_ok(), **_REPORT_ERRORS},
            },
            "post": {
                "summary": "Enter a record (its kind decides which figures are required)",
                "security": BEARER,
                "requestBody": request_body(
                    {"kind": {"type": "string", "enum": list(KINDS)}, **RECORD_VALUES},
                    ["region_id", "kind", "day"],
                ),
                "responses": {
                    "201": {"description": "created", **json_content({"type": "object"})},
                    **_REPORT_ERRORS,
                },
            },
        },
        "/api/records/{record_id}": {
            "get": {
                "summary": "One record with its history of changes",
                "security": BEARER,
                "parameters": RECORD_ID,
                "responses": {**_ok(), **error_responses(401, 403, 404)},
            },
            "put": {
                "summary": "Replace a record's values (the kind stays)",
                "security": BEARER,
                "parameters": RECORD_ID,
                "requestBody": request_body(RECORD_VALUES, ["day"]),
                "responses": {**_ok(), **error_responses(400, 401, 403, 404)},
            },
            "delete": {
                "summary": "Delete a record (its history stays)",
                "security": BEARER,
                "parameters": RECORD_ID,
                "responses": {**_ok(), **error_responses(401, 403, 404)},
            },
        },
    }
)
