"""Tags, tag vocabularies, licenses and the activity stream."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import attrs

from opencatalog.domain import rules
from opencatalog.domain.licenses import DEFAULT_LICENSES, License
from opencatalog.domain.model import Activity, State, Tag, Vocabulary
from opencatalog.domain.permissions import Action
from opencatalog.errors import NotFound, ValidationFailed
from opencatalog.ports.storage import DatasetFilter

from ._base import Call, Service
from .validation import Errors

__all__ = ["ActivityService", "LicenseService", "TagService"]

#: How many activities one read of the stream takes when filtering it.
_SCAN_BATCH = 500


class TagService(Service):
    """Tags in use, and vocabularies (closed tag lists, managed by sysadmins)."""

    def counts(
        self, *, vocabulary: str | None = None, query: str | None = None, limit: int | None = None
    ) -> builtins.list[tuple[str, int]]:
        """(tag, number of datasets the actor may read that carry it), most used first.

        ``vocabulary`` (id or name) selects vocabulary tags instead of free tags; ``query``
        keeps tags containing it (case-insensitive).
        """
        errors = Errors()
        if query is not None and not isinstance(query, str):
            errors.add("query", "Must be a string")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            errors.add("limit", "Must be a natural number")
        errors.raise_if_any()
        with self._call() as call:
            vocab_id = self._vocabulary(call, vocabulary).id if vocabulary else None
            flt = DatasetFilter(visibility=call.actor.visibility())
            counts = call.uow.datasets.tag_counts(flt, vocabulary_id=vocab_id)
        if query:
            needle = query.casefold()
            counts = [(name, n) for name, n in counts if needle in name.casefold()]
        return counts[:limit] if limit is not None else counts

    def names(
        self, *, vocabulary: str | None = None, query: str | None = None
    ) -> builtins.list[str]:
        """Tag names in use (or a vocabulary's tags), sorted by name."""
        if vocabulary:
            with self._call() as call:
                tags = list(self._vocabulary(call, vocabulary).tags)
            if query:
                tags = [t for t in tags if query.casefold() in t.casefold()]
            return sorted(tags)
        return sorted(name for name, _ in self.counts(query=query))

    def search(
        self,
        query: str | Sequence[str] | None,
        *,
        vocabulary: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, builtins.list[Tag]]:
        """Tags whose name contains every query string, case-insensitively (CKAN tag_search):
        free tags of datasets the actor may read, or the tags of ``vocabulary`` (id or name).
        Returns the total and the requested page, ordered by name. No query string finds
        nothing."""
        terms = self._terms(query, offset=offset, limit=limit)
        if not terms:
            return 0, []
        with self._call() as call:
            vocab = self._vocabulary(call, vocabulary) if vocabulary else None
            if vocab is not None:
                names = list(vocab.tags)
            else:
                flt = DatasetFilter(visibility=call.actor.visibility())
                names = [name for name, _ in call.uow.datasets.tag_counts(flt)]
        needles = [t.casefold() for t in terms]
        found = sorted(n for n in set(names) if all(x in n.casefold() for x in needles))
        page = found[offset:] if limit is None else found[offset : offset + limit]
        vocab_id = vocab.id if vocab is not None else None
        return len(found), [Tag(name=n, vocabulary_id=vocab_id) for n in page]

    def autocomplete(
        self, query: str | Sequence[str] | None, *, vocabulary: str | None = None, limit: int = 10
    ) -> builtins.list[str]:
        """Names of the tags :meth:`search` finds, at most ``limit`` (CKAN
        tag_autocomplete)."""
        return [tag.name for tag in self.search(query, vocabulary=vocabulary, limit=limit)[1]]

    @staticmethod
    def _terms(
        query: str | Sequence[str] | None, *, offset: int, limit: int | None
    ) -> builtins.list[str]:
        errors = Errors()
        terms: builtins.list[str] = []
        if isinstance(query, str):
            terms = [query]
        elif query is not None:
            if not isinstance(query, Sequence) or not all(isinstance(t, str) for t in query):
                errors.add("query", "Must be a string or a list of strings")
            else:
                terms = list(query)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            errors.add("offset", "Must be a natural number")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            errors.add("limit", "Must be a natural number")
        errors.raise_if_any()
        return [t.strip() for t in terms if t.strip()]

    def _vocabulary(self, call: Call, ref: str) -> Vocabulary:
        if not isinstance(ref, str) or not ref:
            raise ValidationFailed({"id": ["Missing value"]})
        vocab = call.uow.vocabularies.get(ref) or call.uow.vocabularies.get_by_name(ref)
        if vocab is None:
            raise NotFound("Vocabulary not found")
        return vocab

    @staticmethod
    def _check(name: object, tags: Sequence[object]) -> tuple[str, ...]:
        errors = Errors()
        if not isinstance(name, str) or not (2 <= len(name) <= 100):
            errors.add("name", "Must be 2 to 100 characters long")
        if not isinstance(tags, Sequence) or isinstance(tags, str):
            errors.add("tags", "Must be a list of tag names")
            errors.raise_if_any()
        out: list[str] = []
        for tag in tags:
            errors.extend("tags", rules.tag_errors(tag))
            if isinstance(tag, str) and tag not in out:
                out.append(tag)
        errors.raise_if_any()
        return tuple(out)

    def create_vocabulary(self, name: str, tags: Sequence[str] = ()) -> Vocabulary:
        """A new vocabulary (sysadmins)."""
        clean = self._check(name, tags)
        with self._call(write=True) as call:
            self._require(call, Action.VOCABULARY_MANAGE, self._policy.base_role(call.actor))
            if call.uow.vocabularies.get_by_name(name) is not None:
                raise ValidationFailed({"name": ["That vocabulary name is already in use."]})
            vocab = Vocabulary(id=call.ctx.new_id(), name=name, tags=clean)
            call.uow.vocabularies.add(vocab)
            call.commit()
        return vocab

    def get_vocabulary(self, id_or_name: str) -> Vocabulary:
        with self._call() as call:
            return self._vocabulary(call, id_or_name)

    def list_vocabularies(self) -> builtins.list[Vocabulary]:
        with self._call() as call:
            return call.uow.vocabularies.list()

    def update_vocabulary(
        self, id_or_name: str, *, name: str | None = None, tags: Sequence[str] | None = None
    ) -> Vocabulary:
        """Rename a vocabulary or replace its tags (sysadmins). Tags still used by datasets
        may not be removed."""
        with self._call(write=True) as call:
            self._require(call, Action.VOCABULARY_MANAGE, self._policy.base_role(call.actor))
            vocab = self._vocabulary(call, id_or_name)
            new_name = vocab.name if name is None else name
            clean = self._check(new_name, vocab.tags if tags is None else tags)
            removed = set(vocab.tags) - set(clean)
            if removed:
                used = {
                    n
                    for n, _ in call.uow.datasets.tag_counts(
                        DatasetFilter(states=frozenset(State)), vocabulary_id=vocab.id
                    )
                }
                if removed & used:
                    raise ValidationFailed(
                        {"tags": [f"Tags in use cannot be removed: {sorted(removed & used)}"]}
                    )
            new = attrs.evolve(vocab, name=new_name, tags=clean)
            call.uow.vocabularies.save(new)
            call.commit()
        return new

    def delete_vocabulary(self, id_or_name: str) -> None:
        """Delete a vocabulary no dataset uses (sysadmins)."""
        with self._call(write=True) as call:
            self._require(call, Action.VOCABULARY_MANAGE, self._policy.base_role(call.actor))
            vocab = self._vocabulary(call, id_or_name)
            if call.uow.datasets.tag_counts(
                DatasetFilter(states=frozenset(State)), vocabulary_id=vocab.id
            ):
                raise ValidationFailed({"message": ["The vocabulary is still in use"]})
            call.uow.vocabularies.remove(vocab.id)
            call.commit()


class LicenseService(Service):
    """The licenses datasets may name."""

    def list(self) -> builtins.list[License]:
        return list(DEFAULT_LICENSES)


class ActivityService(Service):
    """The activity stream, newest first, filtered by what the actor may read."""

    def _check_page(self, offset: int, limit: int) -> None:
        errors = Errors()
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            errors.add("offset", "Must be a natural number")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1000:
            errors.add("limit", "Must be between 1 and 1000")
        errors.raise_if_any()

    def for_dataset(
        self, id_or_name: str, *, offset: int = 0, limit: int = 31
    ) -> builtins.list[Activity]:
        self._check_page(offset, limit)
        with self._call() as call:
            ds = self._dataset(call, id_or_name)
            return call.uow.activities.list(object_id=ds.id, offset=offset, limit=limit)

    def for_organization(
        self, id_or_name: str, *, offset: int = 0, limit: int = 31
    ) -> builtins.list[Activity]:
        self._check_page(offset, limit)
        with self._call() as call:
            group = self._group(call, id_or_name, is_organization=True)
            return call.uow.activities.list(object_id=group.id, offset=offset, limit=limit)

    def for_group(
        self, id_or_name: str, *, offset: int = 0, limit: int = 31
    ) -> builtins.list[Activity]:
        self._check_page(offset, limit)
        with self._call() as call:
            group = self._group(call, id_or_name, is_organization=False)
            return call.uow.activities.list(object_id=group.id, offset=offset, limit=limit)

    def for_user(
        self, id_or_name: str, *, offset: int = 0, limit: int = 31
    ) -> builtins.list[Activity]:
        """What a user did, hiding activities on datasets the actor may not read."""
        self._check_page(offset, limit)
        with self._call() as call:
            user = self._user(call, id_or_name)
            labels = call.actor.labels()
            items = call.uow.activities.list(user_id=user.id, offset=offset, limit=limit)
            return [
                a
                for a in items
                if labels is None or a.object_type != "dataset" or set(a.permission_labels) & labels
            ]

    def recent_datasets(self, *, offset: int = 0, limit: int = 31) -> builtins.list[Activity]:
        """The site's dataset activities the actor may read, newest first (CKAN
        recently_changed_packages_activity_list): anyone may ask."""
        self._check_page(offset, limit)
        with self._call() as call:
            labels = call.actor.labels()
            wanted = offset + limit
            found: builtins.list[Activity] = []
            start = 0
            while len(found) < wanted:
                batch = call.uow.activities.list(offset=start, limit=_SCAN_BATCH)
                found.extend(
                    a
                    for a in batch
                    if a.object_type == "dataset"
                    and (labels is None or set(a.permission_labels) & labels)
                )
                if len(batch) < _SCAN_BATCH:
                    break
                start += _SCAN_BATCH
            return found[offset:wanted]

    def recent(self, *, offset: int = 0, limit: int = 31) -> builtins.list[Activity]:
        """The whole site's stream (sysadmins)."""
        self._check_page(offset, limit)
        with self._call() as call:
            self._require(call, Action.ACTIVITY_READ_ALL, self._policy.base_role(call.actor))
            return call.uow.activities.list(offset=offset, limit=limit)
