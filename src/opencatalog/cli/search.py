"""``search`` and ``reindex``: query the index, compare it with the database, rebuild it."""

from __future__ import annotations

import click

from opencatalog.serialization import dataset_to_dict

from ._common import CliState, emit, message, pass_state, stderr_is_tty

__all__ = ["reindex", "search"]


@click.group()
def search() -> None:
    """Search datasets; check and repair the search index."""


@search.command("query")
@click.argument("q", default="")
@click.option("--fq", multiple=True, help="A filter query, e.g. tags:economy (repeatable).")
@click.option("--facet", "facets", multiple=True, help="A facet field (repeatable).")
@click.option("--sort", default=None, help='e.g. "name asc" or "metadata_modified desc".')
@click.option("--limit", type=click.IntRange(0, 1000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--include-private", is_flag=True, help="Include private datasets.")
@click.option("--names", is_flag=True, help="Print dataset names only, one per line.")
@pass_state
def query(
    state: CliState,
    q: str,
    fq: tuple[str, ...],
    facets: tuple[str, ...],
    sort: str | None,
    limit: int,
    offset: int,
    include_private: bool,
    names: bool,
) -> None:
    """Find datasets with CKAN's query syntax (Q: words, "phrases", field:value, AND/OR/NOT)."""
    catalog = state.open()
    result = catalog.search.datasets(
        q,
        fq=list(fq),
        facets=list(facets),
        sort=sort,
        limit=limit,
        offset=offset,
        include_private=include_private,
    )
    if names:
        for ds in result.results:
            click.echo(ds.name)
        message(f"{result.count} found")
        return
    emit(
        {
            "count": result.count,
            "results": [dataset_to_dict(ds) for ds in result.results],
            "facets": {
                name: [
                    {"name": i.name, "display_name": i.display_name, "count": i.count}
                    for i in items
                ]
                for name, items in result.facets.items()
            },
        }
    )


@search.command("check")
@click.option("--repair", is_flag=True, help="Fix the differences found.")
@pass_state
def check(state: CliState, repair: bool) -> None:
    """Compare the search index with the database (missing, extra and stale documents).

    Exits with 1 when differences remain (not repaired).
    """
    catalog = state.open()
    report = catalog.search.repair() if repair else catalog.search.check()
    emit(
        {
            "missing": list(report.missing),
            "extra": list(report.extra),
            "stale": list(report.stale),
            "duplicated": list(report.duplicated),
            "repaired": repair and not report.clean,
        }
    )
    if report.clean:
        message("The search index matches the database")
    elif repair:
        message("Repaired the search index")
    else:
        message("The search index differs from the database (run with --repair)")
        raise SystemExit(1)


@search.command("stats")
@pass_state
def stats(state: CliState) -> None:
    """Documents, size and pending changes of the search index."""
    emit(state.open().search.stats())


@click.command()
@pass_state
def reindex(state: CliState) -> None:
    """Rebuild the search index from the database.

    Searches keep working while it runs: documents are replaced in place and those of
    datasets no longer stored are removed at the end. Progress goes to stderr.
    """
    catalog = state.open()
    shown = [0]

    def progress(done: int, total: int) -> None:
        if (stderr_is_tty() and done - shown[0] >= 1000) or done == total:
            shown[0] = done
            click.echo(f"\rindexed {done}/{total}", err=True, nl=done == total)

    count = catalog.search.reindex(progress=progress)
    message(f"Reindexed {count} datasets")
