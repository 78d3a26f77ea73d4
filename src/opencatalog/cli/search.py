"""``search`` and ``reindex``: query the index, compare it with the database, look inside it,
rebuild it."""

from __future__ import annotations

import click

from opencatalog.domain.search import INDEX_NAMES
from opencatalog.serialization import dataset_to_dict

from ._common import CliState, dumps, emit, message, pass_state, stderr_is_tty

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
    """Compare the search index with the database: datasets missing, extra or stale in the
    packages index, resources missing or extra in the resources index, and resources whose
    file text is missing or extra in the contents index.

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
            "resources_missing": list(report.resources_missing),
            "resources_extra": list(report.resources_extra),
            "contents_missing": list(report.contents_missing),
            "contents_extra": list(report.contents_extra),
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
    """Documents per index (packages, resources, contents), size and pending changes."""
    result = state.open().search.stats()
    emit(result)
    per_index = result.get("per_index", {})
    message(", ".join(f"{name}: {per_index.get(name, 0)}" for name in INDEX_NAMES))


_INDEX = click.Choice(INDEX_NAMES)


@search.command("doc")
@click.argument("index", type=_INDEX)
@click.argument("doc_id", metavar="ID")
@pass_state
def doc(state: CliState, index: str, doc_id: str) -> None:
    """Print one document of INDEX as the search index stores it (ID: a dataset id, a
    resource id, or <resource id>:<chunk> for contents)."""
    emit(state.open().search.document(index, doc_id))


@search.command("browse")
@click.argument("index", type=_INDEX)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(0, 100), default=20, show_default=True)
@click.option("--jsonl", is_flag=True, help="One document per line instead of one JSON page.")
@pass_state
def browse(state: CliState, index: str, offset: int, limit: int, jsonl: bool) -> None:
    """List the documents of INDEX (packages, resources or contents), ordered by id."""
    page = state.open().search.browse(index, offset=offset, limit=limit)
    if jsonl:
        for item in page.items:
            click.echo(dumps(dict(item)))
    else:
        emit(
            {
                "index": page.index,
                "total": page.total,
                "offset": page.offset,
                "limit": page.limit,
                "items": [dict(item) for item in page.items],
            }
        )
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    message(f"{index}: {shown} of {page.total}")


@click.command()
@pass_state
def reindex(state: CliState) -> None:
    """Rebuild the search index from the database: datasets, their resources and the text
    extracted from their files.

    The new index is built beside the current one and replaces it when complete (indices
    that cannot build beside themselves are rebuilt in place); searches keep answering from
    the current one meanwhile, and changes made during the rebuild are applied right after
    it. Progress goes to stderr.
    """
    catalog = state.open()
    shown = [0]

    def progress(done: int, total: int) -> None:
        if stderr_is_tty():  # one line, updated in place
            if done - shown[0] >= 1000 or done == total:
                shown[0] = done
                click.echo(f"\rindexed {done}/{total}", err=True, nl=done == total)
        elif done == total or done - shown[0] >= max(1000, total // 10):  # a line a tenth
            shown[0] = done
            click.echo(f"indexed {done}/{total}", err=True)

    count = catalog.search.reindex(progress=progress)
    per_index = catalog.search.stats().get("per_index", {})
    message(
        f"Reindexed {count} datasets ("
        + ", ".join(f"{name}: {per_index.get(name, 0)}" for name in INDEX_NAMES)
        + ")"
    )
