"""Datasets and their resources: the catalog's main aggregate.

Resource files follow their resources in the same transaction as the change: a resource
created with an external http(s) URL, or whose URL becomes a new external one, gets a
``pipeline`` job (deduplicated per resource, see :mod:`opencatalog.services.pipeline`) and a
``pending`` file record; a resource deleted (or dropped by a dataset update) or a dataset
purged loses its file records, and the ``contents`` index is told to drop its text. A change
of a dataset's state or visibility asks the ``contents`` index to re-check its resources.
Bulk loads (:meth:`DatasetService.create_many`) do not enqueue: run
:meth:`~opencatalog.services.pipeline.PipelineService.enqueue_all` after a load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from attrs import frozen

from opencatalog.domain import rules
from opencatalog.domain.commands import (
    DatasetInput,
    DatasetPatch,
    ResourceInput,
    ResourcePatch,
)
from opencatalog.domain.model import Dataset, Resource, State, Tag
from opencatalog.domain.permissions import Action, dataset_labels
from opencatalog.errors import AlreadyExists, Conflict, NotFound, OpenCatalogError, ValidationFailed
from opencatalog.ports.storage import DatasetFilter

from ._base import Call, Service, require_input, require_ref
from .pipeline import CONTENTS_TOPIC, is_external, request_processing
from .validation import Errors, check_dataset, check_resource, given

__all__ = ["BulkResult", "DatasetService", "Page", "ResourceService"]

log = logging.getLogger("opencatalog.datasets")

TOPIC = "dataset"


@frozen(kw_only=True)
class Page:
    """One page of a listing: the items, how many there are in all, and the window."""

    items: tuple[Any, ...]
    total: int
    offset: int
    limit: int | None


@frozen(kw_only=True)
class BulkResult:
    """The outcome of :meth:`DatasetService.create_many`.

    ``errors`` maps the 0-based position of each refused input to its field errors; refused
    inputs wrote nothing, accepted ones were written whole.
    """

    created: int
    errors: dict[int, dict[str, Any]]


def _page_args(offset: int, limit: int | None) -> None:
    errors = Errors()
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        errors.add("offset", "Must be a natural number")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        errors.add("limit", "Must be a natural number")
    errors.raise_if_any()


class _DatasetWriter(Service):
    """The shared steps of every dataset change, taking the caller's ``Call``."""

    # -- building ------------------------------------------------------------------------

    def _resolve_org(self, call: Call, ref: str | None, errors: Errors) -> str | None:
        if ref is None or ref == "":
            return None
        org = call.find_group(ref)
        if org is None or not org.is_organization or org.state is not State.ACTIVE:
            errors.add("owner_org", "Organization does not exist")
            return None
        return org.id

    def _resolve_groups(self, call: Call, refs: Sequence[str], errors: Errors) -> tuple[str, ...]:
        ids: list[str] = []
        for ref in refs:
            group = call.find_group(ref)
            if group is None or group.is_organization or group.state is not State.ACTIVE:
                errors.add("groups", f"Group not found: {ref}")
            elif group.id not in ids:
                ids.append(group.id)
        return tuple(ids)

    def _resolve_tags(self, call: Call, tags: Sequence[Tag], errors: Errors) -> tuple[Tag, ...]:
        seen: dict[tuple[str, str | None], Tag] = {}
        vocabularies: dict[str, Any] = {}
        for tag in tags:
            vocab_id = tag.vocabulary_id
            if vocab_id is not None:
                vocab = vocabularies.get(vocab_id)
                if vocab is None:
                    vocab = call.uow.vocabularies.get(
                        vocab_id
                    ) or call.uow.vocabularies.get_by_name(vocab_id)
                    if vocab is None:
                        errors.add("tags", f"Tag vocabulary {vocab_id} does not exist")
                        continue
                    vocabularies[vocab_id] = vocab
                if tag.name not in vocab.tags:
                    errors.add(
                        "tags", f'Tag "{tag.name}" does not belong to vocabulary {vocab.name}'
                    )
                    continue
                tag = Tag(name=tag.name, vocabulary_id=vocab.id)
            seen.setdefault((tag.name, tag.vocabulary_id), tag)
        return tuple(seen.values())

    def _build_resource(
        self,
        call: Call,
        dataset_id: str,
        inp: ResourceInput,
        position: int,
        previous: Resource | None,
    ) -> Resource:
        fmt = rules.canonical_format(inp.format) if inp.format else None
        if fmt is None and inp.url:
            fmt = rules.guess_format(inp.url)
        return Resource(
            id=previous.id if previous is not None else (inp.id or call.ctx.new_id()),
            package_id=dataset_id,
            url=inp.url or "",
            url_type=inp.url_type,
            name=inp.name,
            description=inp.description,
            format=fmt,
            mimetype=inp.mimetype,
            hash=inp.hash,
            size=inp.size,
            position=position,
            created=previous.created if previous is not None else call.now,
            last_modified=inp.last_modified,
            metadata_modified=call.now,
            extras=dict(inp.extras),
        )

    def _build_resources(
        self,
        call: Call,
        dataset_id: str,
        inputs: Sequence[ResourceInput],
        existing: Sequence[Resource],
    ) -> tuple[Resource, ...]:
        by_id = {r.id: r for r in existing}
        out = []
        for position, inp in enumerate(inputs):
            previous = by_id.get(inp.id) if inp.id else None
            res = self._build_resource(call, dataset_id, inp, position, previous)
            if previous is not None and _same_resource(previous, res):
                res = previous
            out.append(res)
        ids = [r.id for r in out]
        if len(set(ids)) != len(ids):
            raise ValidationFailed({"resources": ["Resource ids must be unique"]})
        return tuple(out)

    def _check_resource_ids(
        self,
        call: Call,
        inputs: Sequence[ResourceInput],
        current: Dataset | None,
        errors: Errors,
    ) -> None:
        """Supplied resource ids must not belong to another dataset."""
        own = {r.id for r in current.resources} if current is not None else set()
        supplied = [i.id for i in inputs if isinstance(i.id, str) and i.id not in own]
        owners = call.resource_owners(supplied) if supplied else {}
        nested: list[dict[str, list[str]]] = []
        for inp in inputs:
            item: dict[str, list[str]] = {}
            holder = owners.get(inp.id) if isinstance(inp.id, str) else None
            if holder is not None and (current is None or holder != current.id):
                item["id"] = ["Resource id already exists"]
            nested.append(item)
        if any(nested):
            errors.fields["resources"] = nested

    def _build(
        self,
        call: Call,
        inp: DatasetInput,
        current: Dataset | None,
        *,
        errors: Errors | None = None,
    ) -> Dataset:
        """A new dataset value from an input: the create/update/patch core. Raises
        ValidationFailed with every field error; checks the org and group rights."""
        errors = check_dataset(inp, errors=errors)
        if not isinstance(inp, DatasetInput):
            errors.raise_if_any()
        actor = call.actor
        sysadmin = actor.is_sysadmin
        if inp.id is not None and current is None and not sysadmin:
            errors.add("id", "The input field id was not expected.")
        # references are resolved even when fields are bad, so every error is reported at
        # once; each is resolved only when its own field is well-formed
        owner_org = None
        if current is not None and inp.owner_org is None:
            owner_org = current.owner_org  # kept when left out, as in CKAN; "" removes it
        elif "owner_org" not in errors.fields:
            owner_org = self._resolve_org(call, inp.owner_org, errors)
        groups: tuple[str, ...] = current.groups if current is not None else ()
        if inp.groups is not None and "groups" not in errors.fields:
            groups = self._resolve_groups(call, inp.groups, errors)
        tags: tuple[Tag, ...] = ()
        if "tags" not in errors.fields:
            tags = self._resolve_tags(call, inp.tags, errors)
        if inp.private is True and owner_org is None and not inp.owner_org:
            errors.add("private", "Datasets with no organization can't be private.")
        if isinstance(inp.resources, tuple) and "resources" not in errors.fields:
            self._check_resource_ids(call, inp.resources, current, errors)
        errors.raise_if_any()
        # rights on the organization the dataset will belong to
        if current is None or owner_org != current.owner_org:
            if owner_org is None:
                self._require(
                    call,
                    Action.DATASET_CREATE_UNOWNED,
                    self._policy.base_role(actor),
                    "An organization must be provided",
                )
            else:
                self._require(
                    call,
                    Action.DATASET_CREATE,
                    self._policy.role_in_group(actor, owner_org),
                    "You cannot add a dataset to this organization",
                )
        # rights on groups newly joined or left
        before = set(current.groups) if current is not None else set()
        for gid in before.symmetric_difference(groups):
            self._require(
                call,
                Action.GROUP_MANAGE_DATASETS,
                self._policy.role_in_group(actor, gid),
                "You may not change the datasets of this group",
            )
        state = self._state_for(call, inp, current)
        dataset_id = current.id if current is not None else (inp.id or call.ctx.new_id())
        if inp.resources is not None:
            resources = self._build_resources(
                call, dataset_id, inp.resources, current.resources if current else ()
            )
        else:
            resources = current.resources if current is not None else ()
        return Dataset(
            id=dataset_id,
            name=inp.name,
            title=inp.title,
            notes=inp.notes,
            url=inp.url,
            version=inp.version,
            author=inp.author,
            author_email=inp.author_email.strip() if inp.author_email else inp.author_email,
            maintainer=inp.maintainer,
            maintainer_email=(
                inp.maintainer_email.strip() if inp.maintainer_email else inp.maintainer_email
            ),
            license_id=inp.license_id,
            owner_org=owner_org,
            private=inp.private,
            state=state,
            type=(current.type if current is not None else (inp.type or "dataset")),
            tags=tags,
            extras=dict(inp.extras),
            groups=groups,
            resources=resources,
            metadata_created=current.metadata_created if current is not None else call.now,
            metadata_modified=call.now,
            creator_user_id=(
                current.creator_user_id if current is not None else call.actor.user_id
            ),
            revision=current.revision + 1 if current is not None else 1,
        )

    def _state_for(self, call: Call, inp: DatasetInput, current: Dataset | None) -> State:
        if inp.state is None:
            return current.state if current is not None else State.ACTIVE
        if current is None:
            # only sysadmins create in a chosen state; others' choice is dropped, as in CKAN
            if self._policy.allows(
                call.actor, Action.DATASET_SET_STATE, self._policy.base_role(call.actor)
            ):
                return inp.state
            return State.ACTIVE
        if inp.state is State.DELETED and current.state is not State.DELETED:
            self._require(
                call, Action.DATASET_DELETE, self._policy.role_for_dataset(call.actor, current)
            )
        return inp.state

    def _free_name(self, call: Call, name: str, own_id: str | None) -> None:
        """Make ``name`` usable: a deleted dataset holding it is renamed to its id; an active
        or draft one makes it a validation error."""
        holder = call.uow.datasets.get_by_name(name, for_update=True)
        if holder is None or holder.id == own_id:
            return
        if holder.state is State.DELETED:
            renamed = attrs.evolve(holder, name=holder.id, revision=holder.revision + 1)
            call.uow.datasets.save(renamed)
            call.changed(TOPIC, holder.id)
            return
        raise ValidationFailed({"name": ["That URL is already in use."]})

    def _store_new(self, call: Call, dataset: Dataset) -> None:
        self._free_name(call, dataset.name, None)
        if call.uow.datasets.get(dataset.id) is not None:
            raise ValidationFailed({"id": ["Dataset id already exists"]})
        call.uow.datasets.add(dataset)
        call.changed(TOPIC, dataset.id)
        call.dataset_activity("created", dataset)
        for res in dataset.resources:
            if is_external(res):
                request_processing(call, dataset.id, res.id, new=True)

    def _store_change(
        self, call: Call, current: Dataset, new: Dataset, verb: str = "updated"
    ) -> Dataset:
        """Save ``new`` over ``current`` unless nothing changed (then ``current`` is kept,
        untouched, with no activity)."""
        if _same_dataset(current, new):
            return current
        if new.name != current.name:
            self._free_name(call, new.name, new.id)
        call.uow.datasets.save(new)
        call.changed(TOPIC, new.id)
        call.dataset_activity(verb, new)
        self._follow_files(call, current, new)
        return new

    def _follow_files(self, call: Call, current: Dataset, new: Dataset) -> None:
        """Keep the resources' files in step with a dataset change (see the module
        docstring): enqueue new external URLs, drop the files of removed resources."""
        before = {r.id: r for r in current.resources}
        for res in new.resources:
            old = before.pop(res.id, None)
            if is_external(res) and (
                old is None or not is_external(old) or old.url.strip() != res.url.strip()
            ):
                request_processing(call, new.id, res.id, new=old is None)
        if before:  # resources no longer in the dataset
            call.uow.files.remove(list(before))
            for rid in before:
                call.changed(CONTENTS_TOPIC, rid)
        if new.state is not current.state or dataset_labels(new) != dataset_labels(current):
            for res in new.resources:
                call.changed(CONTENTS_TOPIC, res.id)

    def _update(self, call: Call, current: Dataset, inp: DatasetInput) -> Dataset:
        new = self._build(call, inp, current)
        return self._store_change(call, current, new)


def _same_resource(a: Resource, b: Resource) -> bool:
    return attrs.evolve(b, metadata_modified=a.metadata_modified) == a


def _same_dataset(a: Dataset, b: Dataset) -> bool:
    return attrs.evolve(b, metadata_modified=a.metadata_modified, revision=a.revision) == a


def _as_input(ds: Dataset) -> DatasetInput:
    """The full input that would rebuild ``ds`` (resources and groups kept)."""
    return DatasetInput(
        name=ds.name,
        title=ds.title,
        notes=ds.notes,
        url=ds.url,
        version=ds.version,
        author=ds.author,
        author_email=ds.author_email,
        maintainer=ds.maintainer,
        maintainer_email=ds.maintainer_email,
        license_id=ds.license_id,
        owner_org=ds.owner_org,
        private=ds.private,
        state=ds.state,
        type=ds.type,
        tags=ds.tags,
        extras=ds.extras,
        groups=None,
        resources=None,
    )


def _apply_patch(current: DatasetInput, patch: DatasetPatch) -> DatasetInput:
    changes = {
        f.name: getattr(patch, f.name)
        for f in attrs.fields(DatasetPatch)
        if given(getattr(patch, f.name))
    }
    if "owner_org" in changes and changes["owner_org"] is None:
        changes["owner_org"] = ""  # a patch that names no organization removes it
    return attrs.evolve(current, **changes)


def _check_revision(current: Dataset, expected: int | None) -> None:
    if expected is not None and expected != current.revision:
        raise Conflict(
            f"Dataset is at revision {current.revision}, the change was based on {expected}"
        )


class DatasetService(_DatasetWriter):
    """Create, read, change and remove datasets (CKAN: packages)."""

    def create(self, data: DatasetInput) -> Dataset:
        """Create a dataset with its resources, in one transaction.

        Needs editor rights in ``owner_org`` (sysadmins may create unowned datasets). A name
        held by a deleted dataset is taken over (the deleted one is renamed to its id).
        Raises ValidationFailed with every field error at once.
        """
        with self._call(write=True) as call:
            dataset = self._build(call, data, None)
            self._store_new(call, dataset)
            call.commit()
        return dataset

    def create_many(
        self,
        items: Iterable[DatasetInput],
        *,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> BulkResult:
        """Create many datasets fast, each whole or not at all.

        Inputs are written in batches of ``batch_size`` per transaction. A refused input
        (bad fields, a taken name, no rights) is reported in :attr:`BulkResult.errors` under
        its position and writes nothing; the others are created. ``progress`` is called with
        the number of inputs handled after each batch.

        A bulk load enqueues no pipeline jobs (that would cost a job row per external URL in
        the load's transactions): run ``catalog.pipeline.enqueue_all()`` (``opencatalog
        pipeline enqueue-all``) afterwards to fetch and index the loaded resources' files.
        """
        created = 0
        errors: dict[int, dict[str, Any]] = {}
        batch: list[tuple[int, DatasetInput]] = []
        handled = 0

        def flush() -> None:
            nonlocal created, handled
            if batch:
                created += self._create_batch(batch, errors)
                handled += len(batch)
                batch.clear()
                if progress is not None:
                    progress(handled)

        for index, item in enumerate(items):
            batch.append((index, item))
            if len(batch) >= batch_size:
                flush()
        flush()
        return BulkResult(created=created, errors=errors)

    def _create_batch(
        self, batch: list[tuple[int, DatasetInput]], errors: dict[int, dict[str, Any]]
    ) -> int:
        with self._call(write=True) as call:
            datasets: list[Dataset] = []
            names: set[str] = set()
            wanted = [item.name for _, item in batch if isinstance(item, DatasetInput)]
            taken = {
                ds.name: ds
                for ds in call.uow.datasets.get_many_by_name(
                    [n for n in wanted if isinstance(n, str)]
                )
            }
            call.resource_owners(  # one lookup for the batch's supplied resource ids
                [
                    r.id
                    for _, item in batch
                    if isinstance(item, DatasetInput) and isinstance(item.resources, tuple)
                    for r in item.resources
                    if isinstance(r, ResourceInput) and isinstance(r.id, str)
                ]
            )
            for index, item in batch:
                try:
                    dataset = self._build(call, item, None)
                    if dataset.name in names:
                        raise ValidationFailed({"name": ["That URL is already in use."]})
                    holder = taken.get(dataset.name)
                    if holder is not None:
                        if holder.state is not State.DELETED:
                            raise ValidationFailed({"name": ["That URL is already in use."]})
                        self._free_name(call, dataset.name, None)
                except ValidationFailed as exc:
                    errors[index] = exc.errors
                    continue
                except OpenCatalogError as exc:  # no rights, a missing org: report, go on
                    errors[index] = {"message": [exc.message]}
                    continue
                names.add(dataset.name)
                datasets.append(dataset)
            try:
                call.uow.datasets.add_many(datasets)
            except AlreadyExists:
                # a clash the checks above could not see (an id, a resource id): fall back to
                # one transaction per input to find the culprits
                call.uow.rollback()
                return self._create_one_by_one(batch, errors)
            call.uow.activities.add_many(
                [call.dataset_activity_record("created", ds) for ds in datasets]
            )
            for ds in datasets:
                call.changed(TOPIC, ds.id)
            call.commit()
        return len(datasets)

    def _create_one_by_one(
        self, batch: list[tuple[int, DatasetInput]], errors: dict[int, dict[str, Any]]
    ) -> int:
        created = 0
        for index, item in batch:
            if index in errors:
                continue
            try:
                self.create(item)
                created += 1
            except ValidationFailed as exc:
                errors[index] = exc.errors
            except AlreadyExists as exc:
                errors[index] = exc.errors
            except OpenCatalogError as exc:
                errors[index] = {"message": [exc.message]}
        return created

    def get(self, id_or_name: str) -> Dataset:
        """The dataset with this id or name. NotFound also when the actor may not see it."""
        with self._call() as call:
            return self._dataset(call, id_or_name)

    def get_many(self, ids: Sequence[str]) -> list[Dataset]:
        """The datasets with these ids the actor may read, in the order given."""
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            raise ValidationFailed({"ids": ["Must be a list of ids"]})
        for ref in ids:
            require_ref(ref, "ids")
        with self._call() as call:
            return [
                ds
                for ds in call.uow.datasets.get_many(ids)
                if self._policy.can_read_dataset(call.actor, ds)
            ]

    def update(
        self, id_or_name: str, data: DatasetInput, *, expected_revision: int | None = None
    ) -> Dataset:
        """Replace a dataset's content (CKAN package_update semantics).

        Omitted scalar fields, tags and extras are cleared; ``resources=None`` and
        ``groups=None`` keep them. ``expected_revision`` makes the update conditional: a
        different current revision raises Conflict. Returns the stored dataset (unchanged,
        with no new revision, when nothing differs).
        """
        with self._call(write=True) as call:
            current = self._dataset(call, id_or_name, Action.DATASET_UPDATE, for_update=True)
            _check_revision(current, expected_revision)
            result = self._update(call, current, data)
            call.commit()
        return result

    def patch(
        self, id_or_name: str, changes: DatasetPatch, *, expected_revision: int | None = None
    ) -> Dataset:
        """Change only the given top-level fields (a given collection replaces the whole
        collection, as in CKAN package_patch)."""
        require_input(changes, DatasetPatch, "a dataset patch")
        with self._call(write=True) as call:
            current = self._dataset(call, id_or_name, Action.DATASET_UPDATE, for_update=True)
            _check_revision(current, expected_revision)
            result = self._update(call, current, _apply_patch(_as_input(current), changes))
            call.commit()
        return result

    def delete(self, id_or_name: str) -> None:
        """Soft-delete: state ``deleted``, group links dropped; its name becomes reusable."""
        with self._call(write=True) as call:
            current = self._dataset(call, id_or_name, Action.DATASET_DELETE, for_update=True)
            if current.state is State.DELETED:
                call.commit()
                return
            new = attrs.evolve(
                current,
                state=State.DELETED,
                groups=(),
                metadata_modified=call.now,
                revision=current.revision + 1,
            )
            self._store_change(call, current, new, verb="deleted")
            call.commit()

    def restore(self, id_or_name: str) -> Dataset:
        """Bring a deleted dataset back as active. Its name must still be free."""
        with self._call(write=True) as call:
            current = self._dataset(call, id_or_name, Action.DATASET_UPDATE, for_update=True)
            if current.state is not State.DELETED:
                return current
            new = attrs.evolve(
                current,
                state=State.ACTIVE,
                metadata_modified=call.now,
                revision=current.revision + 1,
            )
            result = self._store_change(call, current, new, verb="restored")
            call.commit()
        return result

    def purge(self, id_or_name: str) -> None:
        """Remove a dataset for good, in any state, with its activities."""
        with self._call(write=True) as call:
            current = self._dataset(call, id_or_name, Action.DATASET_PURGE, for_update=True)
            call.uow.datasets.remove(current.id)
            call.uow.activities.remove_for_object(current.id)
            call.changed(TOPIC, current.id)
            resource_ids = [r.id for r in current.resources]
            call.uow.files.remove(resource_ids)
            for rid in resource_ids:
                call.changed(CONTENTS_TOPIC, rid)
            call.commit()

    def list(
        self,
        *,
        offset: int = 0,
        limit: int | None = None,
        organization: str | None = None,
        group: str | None = None,
        tag: str | None = None,
        include_private: bool = False,
        include_drafts: bool = False,
        include_deleted: bool = False,
        order: str = "name",
    ) -> Page:
        """Datasets the actor may read, by name (or ``order="-metadata_modified"``).

        By default only active public datasets are listed (CKAN package_list); the
        ``include_*`` switches widen that to what the actor may see.
        """
        _page_args(offset, limit)
        for name, value in (("organization", organization), ("group", group), ("tag", tag)):
            if value is not None:
                require_ref(value, name)
        if order not in ("name", "-metadata_modified"):
            raise ValidationFailed({"order": ["Must be name or -metadata_modified"]})
        with self._call() as call:
            states = {State.ACTIVE}
            if include_drafts:
                states.add(State.DRAFT)
            if include_deleted:
                states.add(State.DELETED)
            flt = DatasetFilter(
                visibility=call.actor.visibility(),
                states=frozenset(states),
                include_private=include_private,
                owner_org=(
                    self._group(call, organization, is_organization=True).id
                    if organization
                    else None
                ),
                group_id=self._group(call, group, is_organization=False).id if group else None,
                tag=tag,
            )
            items = call.uow.datasets.list(flt, offset=offset, limit=limit, order=order)
            total = call.uow.datasets.count(flt)
        return Page(items=tuple(items), total=total, offset=offset, limit=limit)

    def count(self) -> int:
        """How many datasets the actor may read in any state."""
        with self._call() as call:
            flt = DatasetFilter(
                visibility=call.actor.visibility(),
                states=frozenset(State),
            )
            return call.uow.datasets.count(flt)


class ResourceService(_DatasetWriter):
    """Resources inside datasets. Every change is a change of the owning dataset."""

    def _owner(self, call: Call, resource_id: str, action: Action | None) -> Dataset:
        if not isinstance(resource_id, str) or not resource_id:
            raise ValidationFailed({"id": ["Missing value"]})
        found = call.uow.datasets.find_by_resource(resource_id)
        if found is None or not self._policy.can_read_dataset(call.actor, found):
            raise NotFound("Resource not found")
        dataset = call.uow.datasets.get(found.id, for_update=action is not None) or found
        if action is not None:
            self._require(call, action, self._policy.role_for_dataset(call.actor, dataset))
        return dataset

    def get(self, resource_id: str) -> Resource:
        """The resource with this id, if the actor may read its dataset."""
        with self._call() as call:
            dataset = self._owner(call, resource_id, None)
            res = dataset.resource(resource_id)
            assert res is not None
            return res

    def add(self, dataset: str, data: ResourceInput) -> Resource:
        """Append a resource to a dataset (id or name); returns it."""
        with self._call(write=True) as call:
            current = self._dataset(call, dataset, Action.DATASET_UPDATE, for_update=True)
            errors = check_resource(data)
            if errors:
                raise ValidationFailed(errors)
            if data.id is not None and call.uow.datasets.find_by_resource(data.id) is not None:
                raise ValidationFailed({"id": ["Resource id already exists"]})
            res = self._build_resource(call, current.id, data, len(current.resources), None)
            new = attrs.evolve(
                current,
                resources=(*current.resources, res),
                metadata_modified=call.now,
                revision=current.revision + 1,
            )
            self._store_change(call, current, new)
            call.commit()
        return res

    def update(self, resource_id: str, data: ResourceInput) -> Resource:
        """Replace a resource's content (omitted fields and extras are cleared)."""
        with self._call(write=True) as call:
            current = self._owner(call, resource_id, Action.DATASET_UPDATE)
            errors = check_resource(data)
            if errors:
                raise ValidationFailed(errors)
            old = current.resource(resource_id)
            assert old is not None
            res = self._build_resource(
                call, current.id, attrs.evolve(data, id=old.id), old.position, old
            )
            result = self._replace(call, current, res)
            call.commit()
        return result

    def patch(self, resource_id: str, changes: ResourcePatch) -> Resource:
        """Change only the given fields; given extras are merged into the existing ones."""
        require_input(changes, ResourcePatch, "a resource patch")
        with self._call(write=True) as call:
            current = self._owner(call, resource_id, Action.DATASET_UPDATE)
            old = current.resource(resource_id)
            assert old is not None
            values = {
                f.name: getattr(old, f.name) for f in attrs.fields(ResourceInput) if f.name != "id"
            }
            for f in attrs.fields(ResourcePatch):
                value = getattr(changes, f.name)
                if given(value):
                    values[f.name] = (
                        {**old.extras, **value}
                        if f.name == "extras" and isinstance(value, dict)
                        else value
                    )
            data = ResourceInput(id=old.id, **values)
            errors = check_resource(data)
            if errors:
                raise ValidationFailed(errors)
            res = self._build_resource(call, current.id, data, old.position, old)
            result = self._replace(call, current, res)
            call.commit()
        return result

    def _replace(self, call: Call, current: Dataset, res: Resource) -> Resource:
        resources = tuple(res if r.id == res.id else r for r in current.resources)
        old = current.resource(res.id)
        if old is not None and _same_resource(old, res):
            return old
        new = attrs.evolve(
            current, resources=resources, metadata_modified=call.now, revision=current.revision + 1
        )
        self._store_change(call, current, new)
        return res

    def delete(self, resource_id: str) -> None:
        """Remove a resource from its dataset; the others are renumbered."""
        with self._call(write=True) as call:
            current = self._owner(call, resource_id, Action.DATASET_UPDATE)
            kept = [r for r in current.resources if r.id != resource_id]
            resources = tuple(
                r if r.position == i else attrs.evolve(r, position=i) for i, r in enumerate(kept)
            )
            new = attrs.evolve(
                current,
                resources=resources,
                metadata_modified=call.now,
                revision=current.revision + 1,
            )
            self._store_change(call, current, new)
            call.commit()

    def reorder(self, dataset: str, order: Sequence[str]) -> Dataset:
        """Put the dataset's resources in ``order``, which must list every resource id once."""
        with self._call(write=True) as call:
            current = self._dataset(call, dataset, Action.DATASET_UPDATE, for_update=True)
            ids = [r.id for r in current.resources]
            if (
                not isinstance(order, Sequence)
                or isinstance(order, str)
                or not all(isinstance(rid, str) for rid in order)
            ):
                raise ValidationFailed({"order": ["Must be a list of resource ids"]})
            if len(set(order)) != len(order):
                raise ValidationFailed({"order": ["Must supply unique resource_ids"]})
            if sorted(order) != sorted(ids):
                raise ValidationFailed(
                    {"order": ["Must list every resource of the dataset exactly once"]}
                )
            by_id = {r.id: r for r in current.resources}
            resources = tuple(
                attrs.evolve(by_id[rid], position=i) if by_id[rid].position != i else by_id[rid]
                for i, rid in enumerate(order)
            )
            new = attrs.evolve(
                current,
                resources=resources,
                metadata_modified=call.now,
                revision=current.revision + 1,
            )
            result = self._store_change(call, current, new)
            call.commit()
        return result
