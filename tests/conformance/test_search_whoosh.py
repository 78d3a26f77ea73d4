"""The search conformance kit against the Whoosh index, in memory and on disk, and the
adapter's own folder handling: generations swapped by ``rebuilding()``, other instances and
processes following the swap, the layout written before generations, and leftovers of
crashed rebuilds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from whoosh import fields
from whoosh.analysis import LowercaseFilter
from whoosh.filedb.filestore import FileStorage

from opencatalog.adapters.whoosh_search import (
    POINTER,
    ListKeyword,
    SeparatedWordsTokenizer,
    WhooshSearchIndex,
)
from opencatalog.domain.search import FACET_FIELDS, SearchQuery, TextQuery, parse_query
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import CONTENTS, CORPUS, RESOURCES, SearchIndexTests


class TestWhooshSearchIndex(SearchIndexTests):
    hypothesis_examples = 30

    @pytest.fixture
    def index(self) -> Iterator[SearchIndex]:
        idx = WhooshSearchIndex.from_url("whoosh://")
        yield idx
        idx.close()


class TestWhooshOnDisk(SearchIndexTests):
    hypothesis_examples = 5

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[SearchIndex]:
        idx = WhooshSearchIndex.from_url(f"whoosh://{tmp_path}/ix")
        yield idx
        idx.close()


def titles(idx: SearchIndex, text: str) -> int:
    return idx.query(SearchQuery(query=parse_query(text))).total


def resources(idx: SearchIndex, text: str) -> set[str]:
    page = idx.query_resources(TextQuery(query=parse_query(text), limit=100))
    return {hit.id for hit in page.hits}


def contents(idx: SearchIndex, text: str) -> set[str]:
    page = idx.query_contents(TextQuery(query=parse_query(text), limit=100))
    return {hit.id for hit in page.hits}


def generations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("gen-"))


def pointer(folder: Path) -> str:
    return (folder / POINTER).read_text(encoding="utf-8").strip()


def load(idx: SearchIndex) -> None:
    idx.index(CORPUS)
    idx.index_resources(RESOURCES)
    idx.index_contents(CONTENTS)


def test_reopen_keeps_documents(tmp_path: Path) -> None:
    url = f"whoosh://{tmp_path}/ix"
    with WhooshSearchIndex.from_url(url) as idx:
        load(idx)
    with WhooshSearchIndex.from_url(url) as idx:
        assert idx.count() == len(CORPUS)
        assert idx.query(SearchQuery(query=parse_query("title:quality"))).total == 3
        assert resources(idx, "budget") == {"r-04-1", "r-04-2"}
        assert contents(idx, "schools") == {"r-04-1:0", "r-04-1:2"}
        assert idx.stats().size_bytes > 0


def test_a_new_folder_starts_at_the_first_generation(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder):
        pass
    assert pointer(folder) == "gen-000001"
    assert generations(folder) == ["gen-000001"]
    assert not any(p.name.startswith(("_MAIN_", "MAIN_")) for p in folder.iterdir())


# -- rebuilding: generations and the swap ----------------------------------------------------


def test_rebuild_fills_a_sibling_generation_and_removes_the_old_one(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder) as idx:
        load(idx)
        with idx.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            fresh.index_resources({"ds-01": RESOURCES["ds-01"]})
            assert generations(folder) == ["gen-000001", "gen-000002"]
            assert pointer(folder) == "gen-000001"
        assert pointer(folder) == "gen-000002"
        assert generations(folder) == ["gen-000002"]
        assert idx.count() == 3
        assert resources(idx, "*:*") == {"r-01-1", "r-01-2"}
        assert contents(idx, "*:*") == set()
        assert idx.stats().size_bytes > 0
    with WhooshSearchIndex(folder) as idx:  # the swap is durable
        assert idx.count() == 3
        assert resources(idx, "gauges") == {"r-01-1"}


def test_failed_rebuild_removes_its_generation(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder) as idx:
        load(idx)
        with pytest.raises(RuntimeError), idx.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            raise RuntimeError("the rebuild failed")
        assert generations(folder) == ["gen-000001"]
        assert pointer(folder) == "gen-000001"
        assert idx.count() == len(CORPUS)


def test_queries_from_another_thread_see_the_old_documents_during_a_rebuild(
    tmp_path: Path,
) -> None:
    seen: list[int] = []
    with WhooshSearchIndex(tmp_path / "ix") as idx:
        load(idx)
        before = titles(idx, "budget")
        assert before > 0
        with idx.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            reader = threading.Thread(target=lambda: seen.append(titles(idx, "budget")))
            reader.start()
            reader.join()
        assert seen == [before]
        assert titles(idx, "budget") == 0


def test_another_instance_follows_the_swap(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder) as writer, WhooshSearchIndex(folder) as reader:
        load(writer)
        assert reader.count() == len(CORPUS)
        with writer.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            fresh.index_contents({"r-06-1": CONTENTS["r-06-1"]})
            assert reader.count() == len(CORPUS)  # still the old generation
        assert reader.count() == 3
        assert contents(reader, "*:*") == {"r-06-1:0"}
        reader.index(CORPUS[3:5])  # writes land in the new generation
        assert writer.count() == 5


def test_opening_during_a_rebuild_keeps_the_generation_being_built(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder) as idx:
        load(idx)
        with idx.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            with WhooshSearchIndex(folder) as other:
                assert other.count() == len(CORPUS)
            assert generations(folder) == ["gen-000001", "gen-000002"]
        assert idx.count() == 3


def test_another_process_follows_the_swap(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    script = f"""
        from opencatalog.adapters.whoosh_search import WhooshSearchIndex
        from opencatalog.testing.search import CORPUS
        with WhooshSearchIndex({str(folder)!r}) as idx:
            with idx.rebuilding() as fresh:
                fresh.index(CORPUS[:4])
    """
    with WhooshSearchIndex(folder) as idx:
        load(idx)
        assert idx.count() == len(CORPUS)
        subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=True)
        assert idx.count() == 4
        assert sorted(i for i, _ in idx.ids()) == ["ds-01", "ds-02", "ds-03", "ds-04"]
        assert resources(idx, "*:*") == set()
    assert generations(folder) == ["gen-000002"]


# -- crash leftovers -------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_rebuild_killed_midway_is_removed_at_the_next_open(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder) as idx:
        load(idx)
    script = f"""
        import os, signal
        from opencatalog.adapters.whoosh_search import WhooshSearchIndex
        from opencatalog.testing.search import CORPUS
        idx = WhooshSearchIndex({str(folder)!r})
        with idx.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            os.kill(os.getpid(), signal.SIGKILL)
    """
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=False)
    assert child.returncode == -signal.SIGKILL
    assert generations(folder) == ["gen-000001", "gen-000002"]
    with WhooshSearchIndex(folder) as idx:
        assert generations(folder) == ["gen-000001"]
        assert idx.count() == len(CORPUS)
        assert resources(idx, "budget") == {"r-04-1", "r-04-2"}
        with idx.rebuilding() as fresh:  # and the next rebuild works
            fresh.index(CORPUS[:2])
        assert idx.count() == 2


def test_unfinished_files_are_removed_at_open(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with WhooshSearchIndex(folder) as idx:
        load(idx)
    half = folder / "gen-000007"
    half.mkdir()
    (half / "_packages_0.toc").write_bytes(b"half written")
    (folder / f"{POINTER}.12345.tmp").write_text("gen-000007\n", encoding="utf-8")
    with WhooshSearchIndex(folder) as idx:
        assert generations(folder) == ["gen-000001"]
        assert not (folder / f"{POINTER}.12345.tmp").exists()
        assert idx.count() == len(CORPUS)
        with idx.rebuilding() as fresh:  # numbering goes on past the leftover
            fresh.index(CORPUS[:1])
    assert pointer(folder) == "gen-000002"


# -- the layout before generations -----------------------------------------------------------

_LEGACY_TEXT = ("text", "title", "notes", "res_name", "res_description", "author", "maintainer")
_LEGACY_KEYWORD = (
    "tags",
    "groups",
    "organization",
    "owner_org",
    "res_format",
    "res_url",
    "license_id",
    "state",
    "dataset_type",
    "capacity",
    "labels",
)


def _legacy_schema() -> fields.Schema:
    """The packages schema as it was before generations: title and notes stored, no whole
    document."""
    analyzer = SeparatedWordsTokenizer() | LowercaseFilter()
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        name=fields.ID(stored=True, sortable=True),
        title_sort=fields.ID(sortable=True),
        modified=fields.NUMERIC(numtype=int, bits=64, signed=True, stored=True, sortable=True),
        created=fields.NUMERIC(numtype=int, bits=64, signed=True, stored=True, sortable=True),
    )
    for name in _LEGACY_TEXT:
        schema.add(name, fields.TEXT(analyzer=analyzer, stored=name in ("title", "notes")))
    for name in _LEGACY_KEYWORD:
        schema.add(name, ListKeyword(column=name in FACET_FIELDS))
    schema.add("extras_*", fields.TEXT(analyzer=analyzer), glob=True)
    return schema


def _write_legacy(folder: Path) -> None:
    """An index as written before generations: ``MAIN`` in the folder itself."""
    folder.mkdir(parents=True)
    ix = FileStorage(str(folder)).create_index(_legacy_schema(), "MAIN")
    writer = ix.writer()
    for doc in CORPUS:
        writer.update_document(**WhooshSearchIndex._fields(doc, whole=False))
    writer.commit()
    ix.close()


def test_the_layout_before_generations_opens_with_empty_resources_and_contents(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "ix"
    _write_legacy(folder)
    with WhooshSearchIndex(folder) as idx:
        assert not (folder / POINTER).exists()
        assert idx.count() == len(CORPUS)
        assert dict(idx.stats().per_index) == {
            "packages": len(CORPUS),
            "resources": 0,
            "contents": 0,
        }
        page = idx.query(SearchQuery(query=parse_query("title:quality"), highlight=True))
        assert page.total == 3
        assert all("<em>Quality</em>" in hit.highlights["title"][0] for hit in page.hits)
        doc = idx.get_document("packages", "ds-01")
        assert doc is not None
        assert (doc["id"], doc["title"]) == ("ds-01", CORPUS[0].title)
        assert resources(idx, "*:*") == set()
        assert list(idx.document_ids("contents")) == []
        assert idx.browse("resources") == (0, [])
        idx.index_resources(RESOURCES)  # the new parts are created beside it
        idx.index_contents(CONTENTS)
        idx.index(CORPUS[:1])
        assert resources(idx, "budget") == {"r-04-1", "r-04-2"}
        assert contents(idx, "schools") == {"r-04-1:0", "r-04-1:2"}
        assert idx.count() == len(CORPUS)
    with WhooshSearchIndex(folder) as idx:
        assert resources(idx, "budget") == {"r-04-1", "r-04-2"}
        with idx.rebuilding() as fresh:  # the first rebuild moves it to a generation
            load(fresh)
        assert idx.get_document("packages", "ds-01") is not None
    assert pointer(folder) == "gen-000001"
    legacy = [p.name for p in folder.iterdir() if p.name.startswith(("_MAIN_", "MAIN_"))]
    assert legacy == []
    assert not any(p.name.startswith(("_resources_", "_contents_")) for p in folder.iterdir())
    with WhooshSearchIndex(folder) as idx:
        assert idx.count() == len(CORPUS)
        assert contents(idx, "schools") == {"r-04-1:0", "r-04-1:2"}


def test_legacy_files_left_by_a_crash_after_the_swap_are_removed_at_open(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    _write_legacy(folder)
    with WhooshSearchIndex(folder) as idx, idx.rebuilding() as fresh:
        load(fresh)
    # as if the process died after replacing CURRENT, before deleting the old files
    _write_legacy(tmp_path / "old")
    for path in (tmp_path / "old").iterdir():
        os.replace(path, folder / path.name)
    with WhooshSearchIndex(folder) as idx:
        assert not any(p.name.startswith(("_MAIN_", "MAIN_")) for p in folder.iterdir())
        assert idx.count() == len(CORPUS)
        assert resources(idx, "budget") == {"r-04-1", "r-04-2"}
