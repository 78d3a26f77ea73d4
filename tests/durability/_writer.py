"""The child process of the crash tests: a stream of writes with a line per acknowledgement.

Usage: ``python _writer.py LOCATION RUN SEED [SEARCH]``. LOCATION is a catalog folder or a
storage URL; RUN names this run's datasets (``k<RUN>-<n>``); SEED drives the choice of
operations; SEARCH, if given, overrides the catalog's ``search`` setting (``none``).

Output (stdout, one JSON object per line, flushed at once, so a SIGKILL loses nothing the
parent could have seen):

* ``{"ready": true}`` once the catalog is open;
* ``{"intent": SEQ, "op": OP, "id": ID, "state": STATE}`` just before a write: the state the
  dataset will be in if the write is applied (``null`` state never occurs: deletes are soft);
* ``{"ack": SEQ}`` after the call returned: the write is acknowledged.

A STATE is everything the check compares: name, revision, lifecycle state, notes, extras,
tags and the ordered resource (id, name) pairs. Dataset and resource ids are chosen here
(the catalog acts as the system actor, which may set them), so an intent fully predicts
what an applied write looks like.

Only this run's datasets are touched, one write at a time, so at a kill at most one write
is in flight: the last intent without an ack.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from typing import Any

from opencatalog import open_catalog
from opencatalog.domain.commands import DatasetInput, DatasetPatch, ResourceInput

HASH_PARAMS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
MAX_WRITES = 100_000  # the parent kills long before


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def base_tags(run: int, n: int) -> list[str]:
    return sorted(["durable", f"run-{run}", f"n{n % 5}"])


def main() -> None:
    location, run, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    overrides = {"search": sys.argv[4]} if len(sys.argv) > 4 else {}
    rng = random.Random(seed)
    cat = open_catalog(location, password_hash_params=HASH_PARAMS, **overrides)
    emit({"ready": True})
    live: dict[str, dict[str, Any]] = {}  # id -> acknowledged state, for active datasets
    created = 0
    for seq in range(MAX_WRITES):
        ops = ["create"] if not live else ["create", "patch", "add", "drop", "delete"]
        weights = [1.0] if not live else [3.0, 3.0, 2.0, 1.0, 1.0]
        op = rng.choices(ops, weights)[0]
        if op == "create":
            n = created
            created += 1
            ds_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            resources = [
                [str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"r{k}"] for k in range(3)
            ]
            state = {
                "name": f"k{run:03d}-{n:04d}",
                "revision": 1,
                "state": "active",
                "notes": "created",
                "extras": {"rev": "1"},
                "tags": base_tags(run, n),
                "resources": resources,
            }
            emit({"intent": seq, "op": op, "id": ds_id, "state": state})
            cat.datasets.create(
                DatasetInput(
                    id=ds_id,
                    name=state["name"],
                    notes="created",
                    extras={"rev": "1"},
                    tags=state["tags"],
                    resources=[
                        ResourceInput(id=rid, name=rname, url=f"https://example.org/{rid}.csv")
                        for rid, rname in resources
                    ],
                )
            )
        else:
            ds_id = rng.choice(sorted(live))
            old = live[ds_id]
            rev = old["revision"] + 1
            state = {**old, "revision": rev}
            if op == "patch":
                n = int(old["name"].rsplit("-", 1)[1])
                state["notes"] = f"patched to revision {rev}"
                state["extras"] = {"rev": str(rev)}
                state["tags"] = sorted([*base_tags(run, n), f"rev-{rev}"])
                emit({"intent": seq, "op": op, "id": ds_id, "state": state})
                cat.datasets.patch(
                    ds_id,
                    DatasetPatch(notes=state["notes"], extras=state["extras"], tags=state["tags"]),
                    expected_revision=old["revision"],
                )
            elif op == "add":
                rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                state["resources"] = [*old["resources"], [rid, f"r{rev}"]]
                emit({"intent": seq, "op": op, "id": ds_id, "state": state})
                cat.resources.add(
                    ds_id,
                    ResourceInput(id=rid, name=f"r{rev}", url=f"https://example.org/{rid}.csv"),
                )
            elif op == "drop":
                if not old["resources"]:
                    continue
                victim = rng.choice(old["resources"])
                state["resources"] = [r for r in old["resources"] if r != victim]
                emit({"intent": seq, "op": op, "id": ds_id, "state": state})
                cat.resources.delete(victim[0])
            else:  # delete (soft)
                state["state"] = "deleted"
                emit({"intent": seq, "op": op, "id": ds_id, "state": state})
                cat.datasets.delete(ds_id)
        emit({"ack": seq})
        if state["state"] == "active":
            live[ds_id] = state
        else:
            live.pop(ds_id, None)


if __name__ == "__main__":
    main()
