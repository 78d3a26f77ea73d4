"""The search services: the three-index search, CKAN resource_search, user and tag lookups and
the index administration, with canaries that must never reach outsiders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from search_env import SearchEnv, search_env

from opencatalog import registry
from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.adapters.tantivy_search import TantivySearchIndex
from opencatalog.adapters.whoosh_search import WhooshSearchIndex
from opencatalog.domain.commands import DatasetInput, ResourceInput, UserInput
from opencatalog.domain.model import Dataset, State
from opencatalog.errors import NotAuthorized, NotFound, SearchQueryError, ValidationFailed
from opencatalog.ports.search import SearchIndex
from opencatalog.services.catalog import Catalog
from opencatalog.services.search import UserSuggestion

CANARY = "zanzibarcanary"  # in a private dataset's resource name, file text and tag
OUTSIDERS = ("anonymous", "dave", "alice", "carol")  # not members of org-b
INSIDERS = ("erin", "frank", "root")


@attrs.define
class World:
    env: SearchEnv
    cast: object
    rivers: Dataset
    lakes: Dataset
    secret: Dataset
    draft: Dataset

    def as_(self, who: str) -> Catalog:
        return self.cast.as_(who)  # type: ignore[attr-defined, no-any-return]


#: Every search index adapter: the services' answers (canaries included) must not depend on it.
ADAPTERS = ["memory", "tantivy", "whoosh", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=ADAPTERS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> SearchIndex:
    if request.param == "memory":
        return MemorySearchIndex()
    if request.param == "tantivy":
        return TantivySearchIndex(tmp_path / "tantivy", writer_heap_mb=32, writer_threads=1)
    if request.param == "whoosh":
        return WhooshSearchIndex(tmp_path / "whoosh")
    url = request.getfixturevalue("postgres_url")
    return registry.create("search", url)


@pytest.fixture
def world(populate: object, index: SearchIndex) -> Iterator[World]:
    with search_env(index=index) as env:
        cast = populate(env.catalog)  # type: ignore[operator]
        cat = env.catalog
        rivers = cat.datasets.create(
            DatasetInput(
                name="rivers",
                title="Rivers",
                notes="River flows.",
                owner_org="org-a",
                tags=("water",),
                resources=(
                    ResourceInput(
                        url="https://example.org/g.csv",
                        name="Gauge readings",
                        description="Hourly levels",
                        format="CSV",
                    ),
                    ResourceInput(url="https://example.org/m.pdf", name="Station map"),
                ),
            )
        )
        lakes = cat.datasets.create(
            DatasetInput(
                name="lakes",
                title="Lakes",
                owner_org="org-a",
                tags=("shore",),
                resources=(ResourceInput(url="https://example.org/l.csv", name="Depths"),),
            )
        )
        secret = cat.datasets.create(
            DatasetInput(
                name="secret-plans",
                title="Plans",
                owner_org="org-b",
                private=True,
                tags=(CANARY + "tag",),
                resources=(
                    ResourceInput(
                        url="https://example.org/s.csv",
                        name=f"{CANARY} file",
                        description="gauge notes",
                    ),
                ),
            )
        )
        draft = cat.datasets.create(
            DatasetInput(
                name="draft-notes",
                title="Draft",
                owner_org="org-b",
                state=State.DRAFT,
                resources=(ResourceInput(url="https://example.org/d.csv", name="pending"),),
            )
        )
        env.store_text(rivers.resources[0].id, "station,level\nalpha,3.2\nflood warning\n")
        env.store_text(lakes.resources[0].id, "depth survey of the northern shore")
        env.store_text(secret.resources[0].id, f"classified {CANARY} gauge memo")
        env.store_text(draft.resources[0].id, f"draft {CANARY} text")
        yield World(env=env, cast=cast, rivers=rivers, lakes=lakes, secret=secret, draft=draft)


# -- everything: the three-index search --------------------------------------------------------


def test_datasets_are_found_through_resources_and_file_text(world: World) -> None:
    anon = world.as_("anonymous").search
    by_resource = anon.everything("readings")
    assert [d.name for d in by_resource.results] == ["rivers"]
    (match,) = by_resource.matches[world.rivers.id].resources
    assert match.resource_id == world.rivers.resources[0].id
    assert match.highlights["name"] == ("Gauge <em>readings</em>",)
    assert by_resource.matches[world.rivers.id].contents == ()

    by_text = anon.everything("flood")
    assert [d.name for d in by_text.results] == ["rivers"]
    (chunk,) = by_text.matches[world.rivers.id].contents
    assert chunk.resource_id == world.rivers.resources[0].id
    assert chunk.chunk == 0
    assert "<em>flood</em> warning" in chunk.highlights["text"][0]

    by_metadata = anon.everything("lakes")
    assert [d.name for d in by_metadata.results] == ["lakes"]
    assert by_metadata.matches == {}
    assert by_metadata.highlights[world.lakes.id]["title"] == ("<em>Lakes</em>",)


def test_totals_facets_and_paging_count_every_way_of_matching(world: World) -> None:
    anon = world.as_("anonymous").search
    # "shore": a tag of lakes and its file text; "depth*": the file text and a resource name
    result = anon.everything("shore OR readings OR flood", facets=["tags", "organization"])
    assert result.count == 2
    assert {d.name for d in result.results} == {"rivers", "lakes"}
    assert {i.name: i.count for i in result.facets["tags"]} == {"water": 1, "shore": 1}
    assert [(i.name, i.display_name, i.count) for i in result.facets["organization"]] == [
        ("org-a", "Org A", 2)
    ]
    first = anon.everything("shore OR readings OR flood", sort="name asc", limit=1)
    second = anon.everything("shore OR readings OR flood", sort="name asc", offset=1, limit=1)
    assert first.count == second.count == 2
    assert [d.name for d in first.results + second.results] == ["lakes", "rivers"]
    filtered = anon.everything("shore OR readings OR flood", fq="tags:water")
    assert [d.name for d in filtered.results] == ["rivers"]


@pytest.mark.parametrize("who", OUTSIDERS)
def test_the_canary_never_reaches_outsiders(world: World, who: str) -> None:
    search = world.as_(who).search
    for q in (CANARY, CANARY[:6] + "*", f'"{CANARY} file"', "classified", f"{CANARY} OR lakes"):
        for options in (
            {},
            {"include_private": True},
            {"include_private": True, "include_drafts": True, "include_deleted": True},
        ):
            result = search.everything(q, facets=["tags", "organization"], **options)
            assert world.secret.id not in {d.id for d in result.results}, (q, options)
            assert world.draft.id not in {d.id for d in result.results}, (q, options)
            assert result.count == (1 if "lakes" in q else 0), (q, options)
            assert set(result.matches) <= {world.lakes.id}
            tags = {i.name for i in result.facets["tags"]}
            assert CANARY + "tag" not in tags
            assert "org-b" not in {i.name for i in result.facets["organization"]}
    # "gauge" is in a public resource name and in the private file: only the public dataset
    result = search.everything("gauge", include_private=True)
    assert [d.name for d in result.results] == ["rivers"]
    assert set(result.matches) == {world.rivers.id}


@pytest.mark.parametrize("who", INSIDERS)
def test_members_find_their_private_datasets_through_resources(world: World, who: str) -> None:
    search = world.as_(who).search
    assert search.everything(CANARY).count == 0  # private needs include_private
    result = search.everything(CANARY, include_private=True)
    assert [d.name for d in result.results] == ["secret-plans"]
    matches = result.matches[world.secret.id]
    assert [m.resource_id for m in matches.resources] == [world.secret.resources[0].id]
    assert [c.resource_id for c in matches.contents] == [world.secret.resources[0].id]
    drafts = search.everything("pending", include_private=True, include_drafts=True)
    assert [d.name for d in drafts.results] == ["draft-notes"]


def test_deleted_datasets_and_removed_resources_stop_matching(world: World) -> None:
    cat = world.env.catalog
    assert cat.search.everything("flood").count == 1
    cat.resources.delete(world.rivers.resources[0].id)
    assert cat.search.everything("flood").count == 0
    assert cat.search.everything("readings").count == 0
    cat.datasets.delete("lakes")
    assert world.as_("anonymous").search.everything("northern").count == 0
    assert cat.search.everything("northern", include_deleted=True).count == 1


def test_everything_needs_a_query(world: World) -> None:
    search = world.as_("anonymous").search
    for q in ("", "   "):
        with pytest.raises(ValidationFailed) as caught:
            search.everything(q)
        assert caught.value.errors == {"q": ["Missing value"]}
    with pytest.raises(SearchQueryError):
        search.everything("title:[a TO b]")
    # fielded queries search dataset fields only; match-all lists everything visible
    assert [d.name for d in search.everything("tags:water").results] == ["rivers"]
    assert search.everything("*:*").count == 2
    assert search.everything("-flood").count == 2  # no word to look for in resources


# -- resource_search ---------------------------------------------------------------------------


def test_resource_search_finds_resources_of_public_datasets(world: World) -> None:
    search = world.as_("anonymous").search
    found = search.resources("name:gauge")
    assert found.count == 1
    assert [r.id for r in found.results] == [world.rivers.resources[0].id]
    both = search.resources(["name:gauge", "format:csv"])
    assert both.count == 1
    assert search.resources(["name:gauge", "format:pdf"]).count == 0
    every = search.resources("name:", order_by="name")
    assert [r.name for r in every.results] == ["Depths", "Gauge readings", "Station map"]
    page = search.resources("name:", order_by="name", offset=1, limit=1)
    assert page.count == 3
    assert [r.name for r in page.results] == ["Gauge readings"]


@pytest.mark.parametrize("who", ["anonymous", "frank", "root"])
def test_resource_search_never_lists_private_resources(world: World, who: str) -> None:
    search = world.as_(who).search
    assert search.resources(f"name:{CANARY}").count == 0
    assert search.resources("description:gauge").count == 0
    assert search.resources("name:pending").count == 0


def test_resource_search_validation(world: World) -> None:
    search = world.as_("anonymous").search
    for missing in (None, "", [], ["  "]):
        with pytest.raises(ValidationFailed) as caught:
            search.resources(missing)
        assert caught.value.errors == {"query": ["Missing value"]}
    with pytest.raises(ValidationFailed) as caught:
        search.resources("gauge")
    assert caught.value.errors == {"query": ["Must be <field>:<value> pair(s)"]}
    with pytest.raises(ValidationFailed) as caught:
        search.resources("password:x")
    assert list(caught.value.errors) == ["query"]
    with pytest.raises(ValidationFailed) as caught:
        search.resources("name:x", order_by="password")
    assert list(caught.value.errors) == ["order_by"]
    with pytest.raises(ValidationFailed):
        search.resources("name:x", offset=-1)
    with pytest.raises(ValidationFailed):
        search.resources("name:x", limit=-1)


# -- user autocomplete -------------------------------------------------------------------------


def test_suggest_users_needs_a_signed_in_user(world: World) -> None:
    with pytest.raises(NotAuthorized):
        world.as_("anonymous").search.suggest_users("ali")
    found = world.as_("dave").search.suggest_users("ali")
    assert found == [UserSuggestion(id=world.cast.id_of("alice"), name="alice", fullname=None)]  # type: ignore[attr-defined]
    assert not hasattr(found[0], "email")


def test_suggest_users_matches_full_names_and_hides_deleted_users(world: World) -> None:
    cat = world.env.catalog
    cat.users.create(
        UserInput(name="zed", email="z@example.org", password="pw-123456", fullname="Zoe Alison")
    )
    cat.users.create(UserInput(name="gone-alien", email="g@example.org", password="pw-123456"))
    cat.users.delete("gone-alien")
    names = [u.name for u in world.as_("dave").search.suggest_users("ali")]
    assert names == ["alice", "zed"]
    assert [u.name for u in world.as_("dave").search.suggest_users("ali", limit=1)] == ["alice"]
    for bad in ({"q": ""}, {"q": "  "}, {"q": "a", "limit": 0}, {"q": "a", "limit": 10**6}):
        with pytest.raises(ValidationFailed):
            world.as_("dave").search.suggest_users(**bad)  # type: ignore[arg-type]


# -- tags ----------------------------------------------------------------------------------------


def test_tag_search_and_autocomplete(world: World) -> None:
    cat = world.env.catalog
    cat.datasets.create(
        DatasetInput(
            name="coasts",
            owner_org="org-a",
            tags=("water quality", "seawater", "Watershed"),
        )
    )
    tags = world.as_("anonymous").tags
    count, found = tags.search("water")
    assert count == 4
    assert [t.name for t in found] == ["Watershed", "seawater", "water", "water quality"]
    count, found = tags.search(["water", "qual"])
    assert (count, [t.name for t in found]) == (1, ["water quality"])
    count, found = tags.search("water", offset=1, limit=2)
    assert (count, [t.name for t in found]) == (4, ["seawater", "water"])
    assert tags.search(None) == (0, [])
    assert tags.search("") == (0, [])
    assert tags.autocomplete("wat", limit=2) == ["Watershed", "seawater"]
    assert tags.names(query="SEA") == ["seawater"]
    with pytest.raises(ValidationFailed):
        tags.search("water", limit=-1)


@pytest.mark.parametrize("who", OUTSIDERS)
def test_tag_lookups_never_reveal_private_tags(world: World, who: str) -> None:
    tags = world.as_(who).tags
    assert tags.search(CANARY[:5]) == (0, [])
    assert tags.autocomplete(CANARY) == []
    assert tags.names(query=CANARY) == []
    assert CANARY + "tag" in world.as_("frank").tags.autocomplete(CANARY)


def test_vocabulary_tag_search(world: World) -> None:
    cat = world.env.catalog
    vocab = cat.tags.create_vocabulary("genres", ["rock", "rockabilly", "jazz"])
    assert cat.tags.autocomplete("rock", vocabulary="genres") == ["rock", "rockabilly"]
    count, found = cat.tags.search("rock", vocabulary=vocab.id)
    assert count == 2
    assert {t.vocabulary_id for t in found} == {vocab.id}
    with pytest.raises(NotFound):
        cat.tags.search("rock", vocabulary="no-such-vocabulary")


# -- administration ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "dave", "alice", "erin"])
def test_index_administration_is_for_sysadmins(world: World, who: str) -> None:
    search = world.as_(who).search
    with pytest.raises(NotAuthorized):
        search.document("packages", world.rivers.id)
    with pytest.raises(NotAuthorized):
        search.document("contents", f"{world.secret.resources[0].id}:0")
    with pytest.raises(NotAuthorized):
        search.browse("resources")
    with pytest.raises(NotAuthorized):
        search.stats()


def test_documents_browse_and_stats(world: World) -> None:
    search = world.as_("root").search
    doc = search.document("packages", world.rivers.id)
    assert doc["name"] == "rivers"
    res = search.document("resources", world.rivers.resources[0].id)
    assert res["package_id"] == world.rivers.id
    assert res["name"] == "Gauge readings"
    chunk = search.document("contents", f"{world.secret.resources[0].id}:0")
    assert CANARY in chunk["text"]
    with pytest.raises(NotFound):
        search.document("resources", "no-such-resource")
    with pytest.raises(ValidationFailed) as caught:
        search.document("datasets", world.rivers.id)
    assert list(caught.value.errors) == ["index"]

    resource_ids = sorted(
        r.id for ds in (world.rivers, world.lakes, world.secret, world.draft) for r in ds.resources
    )
    page = search.browse("resources", offset=1, limit=2)
    assert (page.index, page.total, page.offset, page.limit) == ("resources", 5, 1, 2)
    assert [item["id"] for item in page.items] == resource_ids[1:3]
    with pytest.raises(ValidationFailed):
        search.browse("resources", limit=101)
    with pytest.raises(ValidationFailed):
        search.browse("nothing")

    stats = search.stats()
    assert stats["documents"] == 4
    assert stats["per_index"] == {"packages": 4, "resources": 5, "contents": 4}
    assert stats["pending"] == 0
    assert stats["rebuilding"] is False
