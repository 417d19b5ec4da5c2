"""HTTP boundary: one blueprint per feature; views stay thin and call into `bot`."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from handlers import (
    api,
    cli,
    console,
    console_dashboard,  # noqa: F401 - adds the dashboard to console.bp
    console_records,  # noqa: F401 - adds the records pages to console.bp
    db,
    h5,
    health,
    org_cli,
    ratelimit,
    report_cli,
    retention_cli,
    staff_api,
    staff_reports_api,  # noqa: F401 - adds the report routes to staff_api.bp
    wechat,
)


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint to `app`, with the request-scoped database session."""
    db.init_app(app)
    cli.register_commands(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(wechat.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(staff_api.bp)
    api.init_app(app)
    h5.init_app(app)
    console.init_app(app)
    org_cli.init_app(app)
    report_cli.init_app(app)
    retention_cli.init_app(app)
    ratelimit.init_app(app)

    @app.before_request
    def _refuse_nul():
        """A NUL character fits no database column (PostgreSQL refuses it): refuse it at the door."""
        for values in (request.args, request.form):
            if any("\x00" in key or "\x00" in value for key, value in values.items(multi=True)):
                message = "请求中含有无法识别的字符 / the request contains a NUL character"
                if request.path.startswith("/api/"):
                    return jsonify(error="invalid_text", message=message), 400
                return message, 400
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc):
        app.logger.warning("request body over %s bytes refused", app.config["MAX_CONTENT_LENGTH"])
        return "request body too large", 413
