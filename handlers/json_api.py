"""What the JSON APIs (`/api/mp` for workers, `/api` for staff) share: the error shape
`{"error", "message"}` with a 4xx, and the checks on query parameters and JSON bodies."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.sql import UNSTORABLE_TEXT


class ApiError(Exception):
    """A request the API refuses: `status`, a stable `code` and a message a person can read."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def http_error(exc: HTTPException):
    """Flask's own HTTP errors (404, 405, 413 ...) in the API's shape."""
    return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code


def json_errors(bp: Blueprint) -> None:
    """Answer every error of `bp` in the API's shape."""
    bp.register_error_handler(
        ApiError, lambda exc: (jsonify(error=exc.code, message=exc.message), exc.status)
    )
    bp.register_error_handler(HTTPException, http_error)


def only(*allowed: str) -> None:
    """Refuse query parameters other than `allowed`."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(400, "unknown_parameter", f"unknown query parameter(s): {', '.join(unknown)}")


def _unstorable(value: object, depth: int = 0) -> bool:
    """A string anywhere in `value` that no database column can store."""
    if isinstance(value, str):
        return bool(UNSTORABLE_TEXT.search(value))
    if depth > 20:
        return True
    if isinstance(value, dict):
        return any(_unstorable(k, depth + 1) or _unstorable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v, depth + 1) for v in value)
    return False


def body(required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    """The JSON object body: every `required` field, perhaps the `optional` ones, nothing else."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    if _unstorable(data):
        raise ApiError(400, "invalid_text", "text must not contain NUL characters or lone surrogates")
    if unknown := sorted(set(data) - set(required) - set(optional)):
        raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}")
    if missing := [f for f in required if f not in data]:
        raise ApiError(400, "missing_field", f"missing field(s): {', '.join(missing)}")
    return data


def text_field(data: dict, name: str, limit: int) -> str:
    """Field `name` as non-empty text of at most `limit` characters, stripped."""
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_field", f"{name} must be non-empty text")
    if len(value) > limit:
        raise ApiError(400, "field_too_long", f"{name} is limited to {limit} characters")
    return value.strip()
