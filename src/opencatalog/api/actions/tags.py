"""Tag and vocabulary actions: ``tag_list``, ``tag_show``, ``tag_search``,
``tag_autocomplete``, ``vocabulary_list``, ``vocabulary_show``, ``vocabulary_create``,
``vocabulary_update``, ``vocabulary_delete``.

The catalog keeps no tag rows, so a tag's ``id`` is its name. Free tags are those of the
datasets the caller may read (CKAN also counts tags of private datasets; the catalog does not
reveal them to outsiders).
"""

from __future__ import annotations

from typing import Any

from opencatalog.domain.model import Vocabulary
from opencatalog.errors import NotFound, ValidationFailed
from opencatalog.services.catalog import Catalog

from ._registry import action
from .datasets import package_dicts
from .params import Params

#: At most this many datasets in tag_show's ``packages`` (as CKAN).
TAG_SHOW_DATASETS = 1000


def _tag_dict(name: str, vocabulary_id: str | None) -> dict[str, Any]:
    return {"id": name, "name": name, "vocabulary_id": vocabulary_id, "display_name": name}


def _vocabulary_dict(vocab: Vocabulary) -> dict[str, Any]:
    return {
        "id": vocab.id,
        "name": vocab.name,
        "tags": [_tag_dict(name, vocab.id) for name in sorted(vocab.tags)],
    }


def _vocabulary_id(cat: Catalog, params: Params) -> str | None:
    """The id of the vocabulary ``vocabulary_id`` names (an id or a name), or None."""
    ref = params.string("vocabulary_id")
    return cat.tags.get_vocabulary(ref).id if ref else None


def _query(params: Params) -> list[str]:
    key = "query" if params.get("query") not in (None, "") else "q"
    return params.string_list(key)


def _page(params: Params, default_limit: int | None) -> tuple[int, int | None]:
    offset = params.integer("offset", 0, minimum=0)
    if params.get("limit") in (None, ""):
        return offset, default_limit
    return offset, params.integer("limit", 0, minimum=0)


@action("tag_list", get=True)
def tag_list(cat: Catalog, params: Params) -> list[Any]:
    """Free tags in use (or, with ``vocabulary_id`` as an id or a name, that vocabulary's
    tags), by name; ``query`` (or ``q``) keeps tags containing it, case-insensitively.
    Names, or with ``all_fields`` dicts of ``id``, ``name``, ``vocabulary_id`` and
    ``display_name``."""
    vocab_id = _vocabulary_id(cat, params)
    query = params.string("query") or params.string("q") or None
    names = cat.tags.names(vocabulary=vocab_id, query=query)
    if params.boolean("all_fields"):
        return [_tag_dict(name, vocab_id) for name in names]
    return names


@action("tag_show", get=True)
def tag_show(cat: Catalog, params: Params) -> dict[str, Any]:
    """The tag ``id`` (its name), free or of the vocabulary ``vocabulary_id``: ``id``,
    ``name``, ``vocabulary_id``, ``display_name``; with ``include_datasets``, ``packages``
    lists up to 1000 public datasets carrying a free tag (package_show dicts)."""
    name = params.require("id", "name")
    vocab_id = _vocabulary_id(cat, params)
    if name not in cat.tags.names(vocabulary=vocab_id, query=name):
        raise NotFound("Tag not found")
    out = _tag_dict(name, vocab_id)
    if params.boolean("include_datasets"):
        out["packages"] = []
        if vocab_id is None:
            found = cat.search.datasets("", fq=[f'tags:"{name}"'], limit=TAG_SHOW_DATASETS)
            out["packages"] = package_dicts(cat, found.results)
    return out


@action("tag_search", get=True)
def tag_search(cat: Catalog, params: Params) -> dict[str, Any]:
    """Tags whose name contains every ``query`` string (a string or a list; ``q`` also
    works), case-insensitively: free tags, or those of ``vocabulary_id``. ``limit`` and
    ``offset`` page them. Returns ``count`` and ``results`` (tag dicts)."""
    offset, limit = _page(params, None)
    total, tags = cat.tags.search(
        _query(params),
        vocabulary=_vocabulary_id(cat, params),
        offset=offset,
        limit=limit,
    )
    return {"count": total, "results": [_tag_dict(t.name, t.vocabulary_id) for t in tags]}


@action("tag_autocomplete", get=True)
def tag_autocomplete(cat: Catalog, params: Params) -> list[str]:
    """Names of the tags tag_search finds for ``query`` (``vocabulary_id``, ``limit``
    default 10, ``offset``)."""
    offset, limit = _page(params, 10)
    _, tags = cat.tags.search(
        _query(params),
        vocabulary=_vocabulary_id(cat, params),
        offset=offset,
        limit=limit,
    )
    return [t.name for t in tags]


@action("vocabulary_list", get=True)
def vocabulary_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """Every vocabulary, by name: ``id``, ``name`` and ``tags`` (tag dicts)."""
    return [_vocabulary_dict(v) for v in cat.tags.list_vocabularies()]


@action("vocabulary_show", get=True)
def vocabulary_show(cat: Catalog, params: Params) -> dict[str, Any]:
    """The vocabulary ``id`` (an id or a name)."""
    return _vocabulary_dict(cat.tags.get_vocabulary(params.require("id")))


def _tag_names(params: Params) -> list[str] | None:
    """``tags`` as names: a list of tag dicts (``{"name": ...}``) or of names."""
    value = params.get("tags")
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValidationFailed({"tags": ["Must be a list of tag dictionaries"]})
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise ValidationFailed({"tags": ["Each tag needs a name"]})
        names.append(name)
    return names


@action("vocabulary_create")
def vocabulary_create(cat: Catalog, params: Params) -> dict[str, Any]:
    """Create a vocabulary (sysadmins): ``name`` and ``tags`` (tag dicts with ``name``, or
    names). Returns it."""
    name = params.require("name")
    return _vocabulary_dict(cat.tags.create_vocabulary(name, _tag_names(params) or []))


@action("vocabulary_update")
def vocabulary_update(cat: Catalog, params: Params) -> dict[str, Any]:
    """Rename the vocabulary ``id`` (``name``) and/or replace its ``tags`` (sysadmins; at
    least one of them). Tags still on datasets may not be removed. Returns it."""
    ref = params.require("id")
    name = params.string("name")
    tags = _tag_names(params)
    if name is None and tags is None:
        raise ValidationFailed({"tags": ["You must supply at least one of name or tags"]})
    return _vocabulary_dict(cat.tags.update_vocabulary(ref, name=name, tags=tags))


@action("vocabulary_delete")
def vocabulary_delete(cat: Catalog, params: Params) -> None:
    """Delete the vocabulary ``id`` (sysadmins); one still used by datasets is refused."""
    cat.tags.delete_vocabulary(params.require("id"))
