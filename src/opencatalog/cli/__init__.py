"""The ``opencatalog`` command: administer a catalog from the shell.

``opencatalog [--catalog DIR_OR_URL] [-c FILE] COMMAND ...``. The catalog is the folder
``./catalog`` unless ``--catalog`` (or ``OPENCATALOG_CATALOG``) names another folder or a
storage URL (``postgresql+psycopg://...``). Settings come from the folder's
``opencatalog.toml``, then the ``--config`` file (or ``OPENCATALOG_CONFIG``), then
``OPENCATALOG_*`` variables. Every command acts as the local administrator (the system
actor).

Data goes to stdout (JSON, pretty-printed on a terminal; ``--jsonl`` on lists), messages and
progress to stderr. Expected errors print one line and exit with 1; usage errors exit with 2.
"""

from __future__ import annotations

import click

import opencatalog

from ._common import DEFAULT_CATALOG, CliState, CommandGroup
from .accounts import token, user
from .admin import info, init, upgrade
from .bulk import dump, load
from .datasets import dataset
from .files import gc, resource
from .groups import group, org
from .health import health
from .jobs import jobs
from .pipeline import pipeline
from .search import reindex, search
from .serve import serve
from .worker import worker

__all__ = ["main"]


@click.group(cls=CommandGroup)
@click.version_option(opencatalog.__version__, prog_name="opencatalog")
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    help="A TOML settings file (default: $OPENCATALOG_CONFIG).",
)
@click.option(
    "--catalog",
    metavar="DIR_OR_URL",
    envvar="OPENCATALOG_CATALOG",
    help="The catalog folder or storage URL "
    f"(default: $OPENCATALOG_CATALOG, else {DEFAULT_CATALOG}).",
)
@click.pass_context
def main(ctx: click.Context, config: str | None, catalog: str | None) -> None:
    """Administer an opencatalog data catalog: accounts, organizations, datasets, bulk
    loads and dumps."""
    ctx.obj = CliState(location=catalog, config=config)


for _command in (
    init,
    upgrade,
    info,
    user,
    token,
    org,
    group,
    dataset,
    load,
    dump,
    search,
    reindex,
    jobs,
    worker,
    serve,
    pipeline,
    health,
    resource,
    gc,
):
    main.add_command(_command)
