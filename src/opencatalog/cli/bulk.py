"""``load`` and ``dump``: datasets as JSON lines, in the shape ckanapi reads and writes.

``dump`` writes one dataset dict per line (package_show's shape, with the ``organization`` and
``groups`` dicts spelled out); ``load`` reads such lines, from opencatalog or from
``ckanapi dump datasets``, and creates the datasets in batches. Either end may be gzipped.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import attrs
import click
from attrs import define, field

from opencatalog.domain import rules
from opencatalog.domain.commands import DatasetInput
from opencatalog.domain.model import Group
from opencatalog.errors import OpenCatalogError, ValidationFailed
from opencatalog.serialization import dataset_input_from_dict, group_input_from_dict
from opencatalog.services.catalog import Catalog

from ._common import CliState, dumps, fail, message, pass_state, stderr_is_tty
from .datasets import GroupLookup

__all__ = ["dump", "load"]

GZIP_MAGIC = b"\x1f\x8b"
DUMP_PAGE = 500


# ---------------------------------------------------------------------------------------------
# Input and output streams
# ---------------------------------------------------------------------------------------------


class _Replay(io.RawIOBase):
    """A binary stream that first gives back bytes already read from another one (so stdin
    can be sniffed for gzip without seeking)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


@define
class _Source:
    """Lines to load, with what the progress bar needs."""

    lines: Iterator[bytes]
    size: int | None
    position: Callable[[], int]


@contextmanager
def _open_source(path: str) -> Iterator[_Source]:
    """The lines of a file, ``-`` (stdin) or a gzipped file (recognised by its content)."""
    with ExitStack() as stack:
        if path == "-":
            stdin = sys.stdin.buffer
            head = stdin.read(2)
            raw: IO[bytes] = io.BufferedReader(_Replay(head, stdin))
            size = None
        else:
            try:
                raw = stack.enter_context(open(path, "rb"))
            except OSError as exc:
                fail(f"Cannot read {path}: {exc.strerror or exc}")
            head = raw.read(2)
            raw.seek(0)
            size = os.fstat(raw.fileno()).st_size
        stream: Iterable[bytes] = raw
        if head == GZIP_MAGIC:
            stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        position = raw.tell if size is not None else (lambda: 0)
        yield _Source(lines=iter(stream), size=size, position=position)


@contextmanager
def _open_target(path: str) -> Iterator[BinaryIO]:
    """Where a dump goes: stdout, or a file written whole or not at all (gzipped for .gz)."""
    if path == "-":
        yield sys.stdout.buffer
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        fh = cast(
            BinaryIO,
            gzip.open(partial, "wb") if target.suffix == ".gz" else open(partial, "wb"),  # noqa: SIM115
        )
    except OSError as exc:
        fail(f"Cannot write {path}: {exc.strerror or exc}")
    try:
        with fh:
            yield fh
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()


# ---------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------


@define
class _References:
    """Puts the target catalog's ids into a dataset dict's ``owner_org`` and ``groups``.

    A reference that is not found by id or name is looked up by the name in the dict's
    ``organization`` (or group dict), so dumps move between catalogs whose ids differ; with
    ``create_orgs``/``create_groups`` what is still missing is created from those dicts.
    """

    catalog: Catalog
    lookup: GroupLookup
    create_orgs: bool
    create_groups: bool
    created: list[str] = field(factory=list)

    def fix(self, item: DatasetInput, data: Mapping[str, Any]) -> DatasetInput:
        """``item`` (structured from ``data``) with its organization and groups as ids of
        this catalog, where they can be found or made."""
        org_id = item.owner_org
        if item.owner_org:
            described = data.get("organization")
            org = self._resolve(
                item.owner_org,
                described if isinstance(described, Mapping) else None,
                organization=True,
                create=self.create_orgs,
            )
            if org is not None:
                org_id = org.id
        group_ids = item.groups
        if item.groups:
            specs: dict[str, Mapping[str, Any]] = {}
            for spec in data.get("groups") or ():
                if isinstance(spec, Mapping):
                    for key in ("name", "id"):  # the id wins, as it does in the input
                        if isinstance(spec.get(key), str):
                            specs[spec[key]] = spec
            resolved: list[str] = []
            for ref in item.groups:
                group = self._resolve(
                    ref, specs.get(ref), organization=False, create=self.create_groups
                )
                resolved.append(group.id if group is not None else ref)
            group_ids = tuple(resolved)
        if (org_id, group_ids) == (item.owner_org, item.groups):
            return item
        return attrs.evolve(item, owner_org=org_id, groups=group_ids)

    def _resolve(
        self, ref: str, described: Mapping[str, Any] | None, *, organization: bool, create: bool
    ) -> Group | None:
        found = self.lookup.find(ref, organization=organization)
        name = described.get("name") if described is not None else None
        if found is None and isinstance(name, str) and name and name != ref:
            found = self.lookup.find(name, organization=organization)
        if found is None and create:
            found = self._create(ref, described, organization=organization)
        return found

    def _create(
        self, ref: str, described: Mapping[str, Any] | None, *, organization: bool
    ) -> Group:
        kind, key = ("organization", "owner_org") if organization else ("group", "groups")
        spec = dict(described or {})
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            spec["name"] = ref
        if not rules.is_uuid(spec.get("id")):
            spec.pop("id", None)
        service = self.catalog.organizations if organization else self.catalog.groups
        try:
            group = service.create(group_input_from_dict(spec))
        except ValidationFailed as exc:
            problem = json.dumps(exc.errors, ensure_ascii=False)
            raise ValidationFailed(
                {key: [f"Cannot create {kind} {spec['name']}: {problem}"]}
            ) from exc
        self.lookup.remember(group)
        self.created.append(f"{kind} {group.name}")
        return group


@define
class _Loader:
    """Reads lines, keeps the good ones for the next batch, reports the bad ones."""

    catalog: Catalog
    references: _References
    report: Callable[[int, dict[str, Any]], None]
    batch_size: int
    lines: int = 0
    created: int = 0
    refused: int = 0
    pending: list[tuple[int, DatasetInput]] = field(factory=list)
    problems: dict[int, dict[str, Any]] = field(factory=dict)

    def add(self, number: int, raw: bytes) -> None:
        """Take line ``number``: parse and structure it, or note why it is refused."""
        if not raw.strip():
            return
        self.lines += 1
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.problems[number] = {"message": ["The line is not UTF-8 text"]}
            return
        except json.JSONDecodeError as exc:
            self.problems[number] = {"message": [f"Invalid JSON: {exc.msg} (column {exc.colno})"]}
            return
        try:
            item = dataset_input_from_dict(data)
            self.pending.append((number, self.references.fix(item, data)))
        except ValidationFailed as exc:
            self.problems[number] = exc.errors
        except OpenCatalogError as exc:  # creating an organization was refused
            self.problems[number] = {"message": [exc.message]}

    def full(self) -> bool:
        return len(self.pending) >= self.batch_size

    def flush(self) -> None:
        """Create the pending datasets; report every refused line so far, in line order."""
        if self.pending:
            result = self.catalog.datasets.create_many(
                [item for _, item in self.pending], batch_size=len(self.pending)
            )
            self.created += result.created
            for index, errors in result.errors.items():
                self.problems[self.pending[index][0]] = errors
            self.pending.clear()
        for number in sorted(self.problems):
            self.refused += 1
            self.report(number, self.problems[number])
        self.problems.clear()


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Datasets written per transaction.",
)
@click.option(
    "--create-orgs",
    is_flag=True,
    help="Create the organizations named in owner_org that are missing.",
)
@click.option(
    "--create-groups", is_flag=True, help="Create the groups named in groups that are missing."
)
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write each refused line's number and errors to this file, as JSON lines.",
)
@pass_state
def load(
    state: CliState,
    file: str,
    batch_size: int,
    create_orgs: bool,
    create_groups: bool,
    errors_file: str | None,
) -> None:
    """Create datasets from FILE: JSON lines, one CKAN dataset dict per line.

    FILE may be - (stdin) and may be gzipped. Lines that cannot be loaded (bad JSON, bad
    fields, a name in use, a missing organization) are reported on stderr as
    `line N: {errors}` and skipped, the others are loaded. Exit code 1 when any line was
    refused.
    """
    catalog = state.open()
    references = _References(
        catalog, GroupLookup(catalog), create_orgs=create_orgs, create_groups=create_groups
    )
    tty = stderr_is_tty()
    with ExitStack() as stack:
        errors_out: IO[str] | None = None
        if errors_file is not None:
            try:
                errors_out = stack.enter_context(open(errors_file, "w", encoding="utf-8"))
            except OSError as exc:
                fail(f"Cannot write {errors_file}: {exc.strerror or exc}")

        def report(number: int, errors: dict[str, Any]) -> None:
            text = f"line {number}: {dumps(errors)}"
            click.echo(("\r\x1b[K" if tty else "") + text, err=True)
            if errors_out is not None:
                errors_out.write(dumps({"line": number, "errors": errors}) + "\n")

        loader = _Loader(catalog, references, report, batch_size)
        source = stack.enter_context(_open_source(file))
        bar = None
        if tty and source.size:
            bar = stack.enter_context(
                click.progressbar(length=source.size, label="Loading", file=sys.stderr)
            )
        done = 0
        broken = None
        try:
            for number, raw in enumerate(source.lines, 1):
                loader.add(number, raw)
                if loader.full():
                    loader.flush()
                    if bar is not None:
                        now = source.position()
                        bar.update(now - done)
                        done = now
        except (OSError, EOFError) as exc:  # a truncated or corrupt gzip file
            broken = f"{file}: cannot read further: {exc}"
        loader.flush()
        if bar is not None:
            bar.update(max(0, (source.size or 0) - done))
    for what in references.created:
        message(f"Created {what}")
    if broken:
        message(broken)
    summary = f"Loaded {loader.created} of {loader.lines} datasets"
    if loader.refused:
        summary += f"; {loader.refused} refused"
        if errors_file:
            summary += f" (see {errors_file})"
    message(summary)
    if loader.refused or broken:
        click.get_current_context().exit(1)


# ---------------------------------------------------------------------------------------------
# dump
# ---------------------------------------------------------------------------------------------


def _all_datasets(catalog: Catalog, *, include_deleted: bool) -> Iterator[tuple[int, Any]]:
    """(total, dataset) for every dataset, by name, a page at a time."""
    offset = 0
    while True:
        page = catalog.datasets.list(
            offset=offset,
            limit=DUMP_PAGE,
            include_private=True,
            include_drafts=True,
            include_deleted=include_deleted,
        )
        for item in page.items:
            yield page.total, item
        if len(page.items) < DUMP_PAGE:
            return
        offset += DUMP_PAGE


@click.command()
@click.argument(
    "file", required=False, default="-", type=click.Path(dir_okay=False, allow_dash=True)
)
@click.option("--include-deleted", is_flag=True, help="Dump deleted datasets too.")
@pass_state
def dump(state: CliState, file: str, include_deleted: bool) -> None:
    """Write every dataset (private ones and drafts included) as JSON lines to FILE.

    FILE defaults to stdout; a name ending in .gz is gzipped. The lines are what `load`
    reads: `opencatalog load FILE --create-orgs --create-groups` rebuilds the datasets in an
    empty catalog (with the same ids).
    """
    catalog = state.open()
    lookup = GroupLookup(catalog)
    count = 0
    # a bar only when it cannot end up mixed with the data on the same terminal
    tty = stderr_is_tty() and (file != "-" or not sys.stdout.isatty())
    with _open_target(file) as out, ExitStack() as stack:
        bar = None
        for total, item in _all_datasets(catalog, include_deleted=include_deleted):
            if tty and bar is None:
                bar = stack.enter_context(
                    click.progressbar(length=total, label="Dumping", file=sys.stderr)
                )
            out.write((dumps(lookup.dataset_dict(item)) + "\n").encode("utf-8"))
            count += 1
            if bar is not None:
                bar.update(1)
        out.flush()
    where = "stdout" if file == "-" else file
    message(f"Dumped {count} datasets to {where}")
