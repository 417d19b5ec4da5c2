"""`/api/mp`: the mini-program's own JSON API (browsing so far). Errors are `{"error", "message"}` with a 4xx."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.catalog import Catalog

bp = Blueprint("api", __name__, url_prefix="/api/mp")
MAX_QUERY_CHARS = 200
MAX_PER_PAGE = 50


class ApiError(Exception):
    """A request the API refuses: `status`, a stable `code` and a message a person can read."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify(error=exc.code, message=exc.message), exc.status


def _http_error(exc: HTTPException):
    return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code


bp.register_error_handler(HTTPException, _http_error)


def init_app(app: Flask) -> None:
    """Answer in the API's error shape also for URLs under /api/ that match no route (no blueprint sees
    those), and let the rest of the site keep Flask's HTML errors."""

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _unrouted(exc: HTTPException):
        if request.path.startswith(bp.url_prefix + "/"):
            return _http_error(exc)
        return exc


def _catalog() -> Catalog:
    return Catalog(current_app.extensions["workerlaw.engine"])


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _only(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(400, "unknown_parameter", f"unknown query parameter(s): {', '.join(unknown)}")


@bp.get("/topics")
def topics():
    """The topics (labour categories) with short descriptions."""
    _only()
    return jsonify(topics=_catalog().topics())


@bp.get("/faq")
def faq_list():
    """FAQ entries of a topic, or matching `q` through the engine's index; paginated."""
    _only("category", "q", "page", "per_page")
    catalog = _catalog()
    category = request.args.get("category") or None
    if category and category not in {t["key"] for t in catalog.topics()}:
        raise ApiError(400, "unknown_category", f"no topic called {category!r}")
    query = (request.args.get("q") or "").strip() or None
    if query and len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, "query_too_long", f"q is limited to {MAX_QUERY_CHARS} characters")
    page = catalog.search(
        category=category,
        query=query,
        page=_int_arg("page", 1, 1, 10_000),
        per_page=_int_arg("per_page", 20, 1, MAX_PER_PAGE),
    )
    items = [{"id": e.id, "category": e.category, "title": e.title, "answer": e.answer} for e in page.entries]
    return jsonify(items=items, total=page.total, page=page.page, per_page=page.per_page)


@bp.get("/faq/<faq_id>")
def faq_detail(faq_id: str):
    """One entry in full, with the text of every article it cites."""
    _only()
    catalog = _catalog()
    entry = catalog.entry(faq_id)
    if entry is None:
        raise ApiError(404, "not_found", f"no FAQ entry {faq_id!r}")
    return jsonify(
        id=entry.id,
        category=entry.category,
        title=entry.title,
        answer=entry.answer,
        detail=entry.detail,
        regional=entry.regional,
        citations=catalog.citations(entry),
    )
