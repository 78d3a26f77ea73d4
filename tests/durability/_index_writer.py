"""The child process of the search-index crash test: writes that keep the indexer busy.

Usage: ``python _index_writer.py FOLDER RUN SEED INDEX_DELAY``. FOLDER is a folder catalog
(SQLite plus the tantivy index in ``FOLDER/index``); RUN names this run's datasets
(``x<RUN>-<n>``); SEED drives the choice of operations; INDEX_DELAY is the catalog's
``index_delay`` (short, so background index commits happen all the time).

Every dataset's title carries one marker word (``mk`` and 16 hex digits) that no other
dataset's title ever carries, so a search for it must find that dataset and nothing else.
Operations: ``bulk`` (``create_many`` of 200 datasets in one transaction, so the indexer
drains big batches), ``create``, ``title`` (a new marker), ``private`` (toggle), ``delete``
(soft) and ``purge``. Datasets belong to the organization ``idx-org`` (created at the first
start) so that they may be private.

Output (stdout, one JSON object per line, flushed at once, written under a lock because the
background indexer thread prints too):

* ``{"ready": true}`` once the catalog is open;
* ``{"intent": SEQ, "op": OP, "changes": [[ID, STATE], ...]}`` just before a write: the state
  each dataset will be in if the write is applied, STATE ``{"marker", "private", "state"}``
  or ``null`` for a purge;
* ``{"ack": SEQ}`` after the call returned;
* ``{"drain": "begin"}`` / ``{"drain": "end", "applied": N}`` around every drain of the
  outbox into the index (so the parent sees whether a kill landed inside one);
* ``{"index_error": MESSAGE}`` when background indexing logged an error (a lock that could
  not be taken, say): the parent treats any as a failure.

Only this run's datasets are touched, one write at a time, so at a kill at most one write is
in flight: the last intent without an ack.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
import uuid
from typing import Any

from opencatalog import open_catalog
from opencatalog.domain.commands import DatasetInput, DatasetPatch, GroupInput
from opencatalog.errors import NotFound

HASH_PARAMS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
ORG = "idx-org"
BULK = 200
MAX_WRITES = 100_000  # the parent kills long before

_out = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, sort_keys=True) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


class _Reporter(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        emit(
            {
                "index_error": record.getMessage()
                + (f" {record.exc_info[1]!r}" if record.exc_info else "")
            }
        )


def title(marker: str) -> str:
    return f"Dataset {marker}"


def main() -> None:
    folder, run, seed, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = random.Random(seed)
    reporter = _Reporter(level=logging.ERROR)
    logging.getLogger("opencatalog").addHandler(reporter)
    cat = open_catalog(folder, password_hash_params=HASH_PARAMS, index_delay=float(delay))
    try:
        cat.organizations.get(ORG)
    except NotFound:
        cat.organizations.create(GroupInput(name=ORG))

    indexer = cat._indexer
    assert indexer is not None
    plain_drain = indexer.drain

    def traced_drain() -> int:
        emit({"drain": "begin"})
        applied = plain_drain()
        emit({"drain": "end", "applied": applied})
        return applied

    indexer.drain = traced_drain  # type: ignore[method-assign]  # the background thread's too

    emit({"ready": True})

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def new_marker() -> str:
        return f"mk{rng.getrandbits(64):016x}"

    live: dict[str, dict[str, Any]] = {}  # id -> acknowledged state (active or deleted)
    created = 0
    for seq in range(MAX_WRITES):
        active = sorted(i for i, s in live.items() if s["state"] == "active")
        ops = ["bulk", "create"]
        weights = [1.0, 3.0]
        if active:
            ops += ["title", "private", "delete"]
            weights += [4.0, 2.0, 1.0]
        if live:
            ops.append("purge")
            weights.append(1.0)
        op = rng.choices(ops, weights)[0]
        changes: list[tuple[str, dict[str, Any] | None]] = []
        if op in ("bulk", "create"):
            items = []
            for _ in range(BULK if op == "bulk" else 1):
                ds_id, marker, private = new_id(), new_marker(), rng.random() < 0.15
                items.append(
                    DatasetInput(
                        id=ds_id,
                        name=f"x{run:03d}-{created:05d}",
                        title=title(marker),
                        owner_org=ORG,
                        private=private,
                        tags=[f"run-{run}"],
                    )
                )
                created += 1
                changes.append((ds_id, {"marker": marker, "private": private, "state": "active"}))
            emit({"intent": seq, "op": op, "changes": changes})
            if op == "bulk":
                result = cat.datasets.create_many(items)
                assert result.created == BULK and not result.errors, result.errors
            else:
                cat.datasets.create(items[0])
        elif op == "purge":
            ds_id = rng.choice(sorted(live))
            changes.append((ds_id, None))
            emit({"intent": seq, "op": op, "changes": changes})
            cat.datasets.purge(ds_id)
        else:
            ds_id = rng.choice(active)
            state = dict(live[ds_id])
            if op == "title":
                state["marker"] = new_marker()
                changes.append((ds_id, state))
                emit({"intent": seq, "op": op, "changes": changes})
                cat.datasets.patch(ds_id, DatasetPatch(title=title(state["marker"])))
            elif op == "private":
                state["private"] = not state["private"]
                changes.append((ds_id, state))
                emit({"intent": seq, "op": op, "changes": changes})
                cat.datasets.patch(ds_id, DatasetPatch(private=state["private"]))
            else:  # delete (soft)
                state["state"] = "deleted"
                changes.append((ds_id, state))
                emit({"intent": seq, "op": op, "changes": changes})
                cat.datasets.delete(ds_id)
        emit({"ack": seq})
        for ds_id, new in changes:
            if new is None:
                live.pop(ds_id, None)
            else:
                live[ds_id] = new


if __name__ == "__main__":
    main()
