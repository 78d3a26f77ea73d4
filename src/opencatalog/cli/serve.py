"""``serve``: answer HTTP for the catalog (CKAN's Action API and the ``/api/v1`` routes)."""

from __future__ import annotations

import click

from ._common import CatalogError, CliState, message, pass_state

__all__ = ["serve"]

#: The modules of the ``server`` extra; missing one of them means the extra is not installed.
_SERVER_MODULES = frozenset({"starlette", "uvicorn", "multipart", "python_multipart"})

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="The port."
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS),
    default="info",
    show_default=True,
    help="How much the server logs (stderr).",
)
@pass_state
def serve(state: CliState, host: str, port: int, log_level: str) -> None:
    """Serve the catalog over HTTP until stopped (SIGTERM or Ctrl-C end it gracefully).

    CKAN clients talk to http://HOST:PORT/api/3/action/<name>; the API tokens that
    `opencatalog token create` issues identify their callers. Needs the server extra
    (pip install 'opencatalog[server]').
    """
    try:
        from opencatalog.api.serve import serve as run_server
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _SERVER_MODULES:
            raise
        raise CatalogError(
            f"`opencatalog serve` needs the server extra ({exc.name} is missing): "
            "pip install 'opencatalog[server]'"
        ) from None
    catalog = state.build(initialize=False)  # the server owns it and closes it
    message(
        f"Serving {state.resolved_location()} on http://{host}:{port}/ "
        "(CKAN Action API at /api/3/action/); SIGTERM or Ctrl-C stop it"
    )
    run_server(catalog, host=host, port=port, log_level=log_level)
    message("Server stopped")
