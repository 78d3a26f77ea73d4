"""The search conformance kit against the tantivy index, in memory and on disk, and what only
the tantivy folder layout has: generations, the writer lock, the old layout, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest
import tantivy

from opencatalog.adapters.tantivy_search import POINTER, TantivySearchIndex
from opencatalog.domain.search import FacetRequest, SearchQuery, TextQuery, parse_query
from opencatalog.errors import BackendError
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import CONTENTS, CORPUS, RESOURCES, SearchIndexTests


class TestTantivySearchIndex(SearchIndexTests):
    hypothesis_examples = 40

    @pytest.fixture
    def index(self) -> Iterator[SearchIndex]:
        idx = TantivySearchIndex.from_url("tantivy://", writer_heap_mb=32, writer_threads=1)
        yield idx
        idx.close()


class TestTantivyOnDisk(SearchIndexTests):
    hypothesis_examples = 5

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[SearchIndex]:
        idx = TantivySearchIndex.from_url(f"tantivy://{tmp_path}/ix", writer_heap_mb=32)
        yield idx
        idx.close()


def _open(path: Path) -> TantivySearchIndex:
    return TantivySearchIndex(path, writer_heap_mb=32, writer_threads=1)


def _words(index: SearchIndex, text: str) -> int:
    return index.query(SearchQuery(query=parse_query(text), labels={"public"})).total


def _generations(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and p.name.startswith("gen-"))


def test_reopen_keeps_documents(tmp_path: Path) -> None:
    url = f"tantivy://{tmp_path}/ix"
    with TantivySearchIndex.from_url(url) as idx:
        idx.index(CORPUS)
        idx.index_resources(RESOURCES)
        idx.index_contents(CONTENTS)
    with TantivySearchIndex.from_url(url) as idx:
        assert idx.count() == len(CORPUS)
        assert idx.query(SearchQuery(query=parse_query("title:quality"))).total == 3
        assert idx.query_resources(TextQuery(query=parse_query("gauges"))).total == 1
        assert idx.query_contents(TextQuery(query=parse_query("schools"))).total == 2
        assert idx.stats().size_bytes > 0
    assert (tmp_path / "ix" / POINTER).read_text().strip() == "gen-000001"


def test_documents_written_after_clear_stay(tmp_path: Path) -> None:
    """tantivy's delete_all_documents rewinds the writer's operation stamps, after which a
    document added once a few deletes were queued vanished at commit; clear() avoids it."""
    with _open(tmp_path / "ix") as idx:
        for _ in range(3):
            idx.clear()
            with idx.bulk() as bulk:
                bulk.delete_contents(["r5", "r2", "r3"])
                bulk.delete(["ds-90", "ds-91", "ds-92"])
            idx.clear()
            idx.index_contents({"r-06-1": CONTENTS["r-06-1"]})
            idx.index(CORPUS[:2])
            assert list(idx.document_ids("contents")) == [("r-06-1:0", "ds-06")]
            assert idx.count() == 2


def test_a_folder_in_the_old_layout_opens_empty_and_is_replaced(tmp_path: Path) -> None:
    """Before generations, the packages index was a tantivy index in the folder itself: it
    opens as an empty index (the catalog refills it from storage) and its files go."""
    folder = tmp_path / "ix"
    folder.mkdir()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", fast=True)
    builder.add_text_field("title", stored=True)
    old = tantivy.Index(builder.build(), path=str(folder))
    writer = old.writer(heap_size=20_000_000, num_threads=1)
    writer.add_document(tantivy.Document(id="ds-old", title="An old document"))
    writer.commit()
    writer.wait_merging_threads()
    del writer, old
    assert (folder / "meta.json").exists()

    with _open(folder) as idx:
        assert idx.count() == 0
        assert dict(idx.stats().per_index) == {"packages": 0, "resources": 0, "contents": 0}
        idx.index(CORPUS)
        assert _words(idx, "quality") == 3
    names = {p.name for p in folder.iterdir()}
    assert "meta.json" not in names
    assert not [n for n in names if n.endswith((".idx", ".store", ".term", ".fast"))]
    assert _generations(folder) == ["gen-000001"]
    with _open(folder) as idx:
        assert idx.count() == len(CORPUS)


def test_a_missing_generation_opens_empty(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with _open(folder) as idx:
        idx.index(CORPUS)
    (folder / POINTER).write_text("gen-000007\n")  # names a generation that is not there
    with _open(folder) as idx:
        assert idx.count() == 0
        idx.index(CORPUS[:2])
    assert _generations(folder) == ["gen-000008"]


def test_swap_is_seen_by_an_index_already_open_on_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with _open(folder) as writer, _open(folder) as reader:
        writer.index(CORPUS)
        writer.index_resources(RESOURCES)
        assert reader.count() in (0, len(CORPUS))  # tantivy reloads readers within ~0.5 s
        with writer.rebuilding() as fresh:
            fresh.index(CORPUS[:3])
            fresh.index_contents({"r-06-1": CONTENTS["r-06-1"]})
            assert _generations(folder) == ["gen-000001", "gen-000002"]
            assert reader.count() in (0, len(CORPUS))  # the reader still reads generation 1
        # the reader follows CURRENT at its next call: the whole new generation at once
        assert reader.count() == 3
        assert _words(reader, "quality") == 3
        assert _words(reader, "budget") == 0
        assert dict(reader.stats().per_index) == {"packages": 3, "resources": 0, "contents": 1}
        assert reader.query_contents(TextQuery(query=parse_query("bridge"))).total == 1
        assert _generations(folder) == ["gen-000002"]  # the old generation is deleted
        with pytest.raises(BackendError):  # the writer holds the folder's writer lock
            reader.index(CORPUS[3:4])
        writer.index(CORPUS[3:5])
    assert (folder / POINTER).read_text().strip() == "gen-000002"
    with _open(folder) as again:
        assert again.count() == 5
        again.index(CORPUS[5:6])  # the lock went with the writer's close
        assert again.count() == 6


def test_failed_rebuild_deletes_its_generation(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with _open(folder) as idx:
        idx.index(CORPUS)
        with pytest.raises(RuntimeError), idx.rebuilding() as fresh:
            fresh.index(CORPUS[:1])
            raise RuntimeError("the rebuild failed")
        assert _generations(folder) == ["gen-000001"]
        assert idx.count() == len(CORPUS)
        with idx.rebuilding() as fresh:
            fresh.index(CORPUS[:1])
        assert idx.count() == 1
    assert _generations(folder) == [(folder / POINTER).read_text().strip()]


_KILLED_REBUILD = """
import os, signal, sys
from opencatalog.adapters.tantivy_search import TantivySearchIndex
from opencatalog.testing.search import CONTENTS, CORPUS, RESOURCES

index = TantivySearchIndex(sys.argv[1], writer_heap_mb=32, writer_threads=1)
index.index(CORPUS)
index.index_resources(RESOURCES)
with index.rebuilding() as fresh:
    fresh.index(CORPUS[:2])  # committed in the new generation
    fresh.index_contents({"r-06-1": CONTENTS["r-06-1"]})
    with fresh.bulk() as bulk:
        bulk.index(CORPUS[2:5])  # not committed
        print("rebuilding", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_rebuild_killed_midway_leaves_the_index_intact(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_REBUILD), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout == "rebuilding\n"
    assert _generations(folder) == ["gen-000001", "gen-000002"]  # the partial one is there
    assert (folder / POINTER).read_text().strip() == "gen-000001"

    with _open(folder) as idx:  # the old generation answers, the partial one is cleaned
        assert _generations(folder) == ["gen-000001"]
        assert idx.count() == len(CORPUS)
        assert _words(idx, "budget") == 2
        assert dict(idx.stats().per_index) == {
            "packages": len(CORPUS),
            "resources": sum(len(docs) for docs in RESOURCES.values()),
            "contents": 0,
        }
        with idx.rebuilding() as fresh:  # and the next rebuild works
            fresh.index(CORPUS[:4])
        assert idx.count() == 4
    assert _generations(folder) == [(folder / POINTER).read_text().strip()]
    assert _generations(folder) != ["gen-000001"]


def test_an_open_reader_does_not_clean_a_rebuild_in_progress(tmp_path: Path) -> None:
    """Leftover generations are deleted only by whoever takes the writer lock."""
    folder = tmp_path / "ix"
    with _open(folder) as writer:
        writer.index(CORPUS)
        with writer.rebuilding() as fresh:
            fresh.index(CORPUS[:2])
            with _open(folder) as reader:  # opened while the rebuild runs
                assert reader.count() == len(CORPUS)
            assert _generations(folder) == ["gen-000001", "gen-000002"]
        assert writer.count() == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_the_writer_lock_is_released_by_a_killed_process(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    script = (
        "import os, signal, sys\n"
        "from opencatalog.adapters.tantivy_search import TantivySearchIndex\n"
        "from opencatalog.testing.search import CORPUS\n"
        "index = TantivySearchIndex(sys.argv[1], writer_heap_mb=32, writer_threads=1)\n"
        "index.index(CORPUS)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], timeout=120)
    assert done.returncode == -signal.SIGKILL
    with _open(folder) as idx:
        assert idx.count() == len(CORPUS)
        idx.delete([CORPUS[0].id])
        assert idx.count() == len(CORPUS) - 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_writer_that_died_is_reported_at_the_next_open(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with _open(folder) as idx:
        idx.index(CORPUS[:2])
    with _open(folder) as idx:
        assert not idx.unclean_shutdown  # closed cleanly
    script = (
        "import os, signal, sys\n"
        "from opencatalog.adapters.tantivy_search import TantivySearchIndex\n"
        "from opencatalog.testing.search import CORPUS\n"
        "index = TantivySearchIndex(sys.argv[1], writer_heap_mb=32, writer_threads=1)\n"
        "index.index(CORPUS[2:4])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], timeout=120)
    assert done.returncode == -signal.SIGKILL
    with _open(folder) as idx:
        assert idx.unclean_shutdown
        idx.index(CORPUS[4:5])
    with _open(folder) as idx:
        assert not idx.unclean_shutdown  # the next clean close clears it
        assert idx.count() == 5


_UNMERGED_SEGMENTS = """
import os, signal, sys
from datetime import UTC, datetime
from opencatalog.adapters.tantivy_search import TantivySearchIndex
from opencatalog.domain.search import DatasetDocument

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOTES = " ".join(f"word{n}" for n in range(150))

def doc(doc_id, title="Filler"):
    return DatasetDocument(
        id=doc_id, name=doc_id, title=title, notes=NOTES, metadata_created=T0,
        metadata_modified=T0,
    )

index = TantivySearchIndex(sys.argv[1], writer_heap_mb=64, writer_threads=1)
for segment in range(7):  # one commit, one segment each
    index.index([doc(f"fill-{segment}-{n}") for n in range(3000)])
with index.bulk() as bulk:  # the 8th segment; its deletes are written at this commit's stamp
    bulk.index([doc("kept", "Original"), doc("gone")] + [doc(f"last-{n}") for n in range(50)])
    bulk.delete(["gone"])
os.kill(os.getpid(), signal.SIGKILL)  # before the merge of the 8 segments ends
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_replaced_document_stays_replaced_when_unmerged_segments_merge(
    tmp_path: Path,
) -> None:
    """A writer killed before its merges ended leaves 8 committed segments; the next writer's
    first operation replaces a document of the segment whose deletes were written at the last
    commit's stamp. tantivy stamps that first operation with the same stamp, and a merge that
    starts before the next commit skipped the delete for that segment: the old document came
    back beside its replacement (see ``_skip_committed_stamp``)."""
    folder = tmp_path / "ix"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_UNMERGED_SEGMENTS), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    (packages,) = folder.glob("gen-*/packages")
    segments = tantivy.Index.open(str(packages)).searcher().num_segments
    assert segments == 8, "the killed writer's merge ended before the kill: nothing to test"

    with _open(folder) as idx:
        (original,) = [d for d in CORPUS if d.id == CORPUS[0].id]
        idx.index([attrs.evolve(original, id="kept", name="kept", title="Replacement")])
    with _open(folder) as idx:
        assert [i for i, _ in idx.ids()].count("kept") == 1
        assert _words(idx, "original") == 0
        assert _words(idx, "replacement") == 1
        assert idx.count() == 7 * 3000 + 51


def test_a_cached_facet_page_follows_commits_of_another_index(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    landing = SearchQuery(facets=[FacetRequest("tags", limit=-1)], labels={"public"})
    with _open(folder) as writer, TantivySearchIndex(folder, cache_size=8) as reader:
        writer.index(CORPUS[:5])
        _wait_for(lambda: reader.count() == 5)
        first = reader.query(landing)
        assert reader.query(landing) == first  # from the cache
        writer.index(CORPUS[5:10])
        writer.delete([CORPUS[0].id])
        _wait_for(lambda: reader.count() == 9)
        again = reader.query(landing)
        assert again.total == first.total + 5 - 1
        with TantivySearchIndex(folder, cache_size=0) as uncached:
            assert again == uncached.query(landing)


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Another index's commits reach a reader when tantivy reloads it (within ~0.5 s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not visible in time"
        time.sleep(0.02)
