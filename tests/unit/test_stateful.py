"""The stateful differential machine, run with the memory backend against itself.

A catalog compared with an identical one must never diverge, so any failure here is a bug in
the machine or a nondeterminism in the services. The second half proves the machine can fail:
storages with a planted defect must be caught.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from opencatalog.adapters.memory import MemoryStorage
from opencatalog.bootstrap import open_catalog
from opencatalog.domain.commands import DatasetInput, ResourceInput
from opencatalog.ports.storage import UnitOfWork
from opencatalog.testing.stateful import (
    CHEAP_PASSWORD_HASHING,
    SequentialIds,
    SteppingClock,
    make_service_machine,
    observe,
    plain,
)


def memory_catalog(storage: Any = None) -> Any:
    return open_catalog(storage=storage, password_hash_params=dict(CHEAP_PASSWORD_HASHING))


MemoryMachine = make_service_machine(memory_catalog)
TestMemoryAgainstItself = MemoryMachine.TestCase
TestMemoryAgainstItself.settings = settings(
    max_examples=60,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- the helpers -------------------------------------------------------------------------------


def test_stepping_clocks_agree_and_advance():
    a, b = SteppingClock(), SteppingClock()
    assert [a(), a(), a()] == [b(), b(), b()]
    first = a()
    assert a() - first == a.step
    a.advance(a.step * 10)
    assert a() - first == a.step * 12


def test_sequential_ids_are_uuid_shaped_and_repeatable():
    from opencatalog.domain.rules import is_uuid

    ids = SequentialIds()
    first = [ids() for _ in range(3)]
    assert first == [SequentialIds()() for _ in range(1)] + first[1:]
    assert len(set(first)) == 3
    assert all(is_uuid(i) for i in first)


def test_plain_leaves_out_secrets():
    from opencatalog.services.users import IssuedToken

    catalog = memory_catalog()
    from opencatalog.domain.commands import UserInput

    catalog.users.create(UserInput(name="ann", email="a@example.org", password="password1"))
    issued = catalog.tokens.create("ann", "key")
    assert isinstance(issued, IssuedToken)
    data = plain(issued)
    assert "secret" not in data and "token_hash" not in data["token"]
    assert issued.secret not in repr(observe(catalog))
    assert "password_hash" not in observe(catalog)["users"][0]


def test_observe_sees_every_kind_of_object():
    catalog = memory_catalog()
    catalog.datasets.create(
        DatasetInput(name="d1", resources=[ResourceInput(url="http://example.org/a.csv")])
    )
    seen = observe(catalog)
    assert [d["name"] for d in seen["datasets"]] == ["d1"]
    assert seen["activities"][0]["activity_type"] == "dataset.created"


# -- the machine catches planted defects ---------------------------------------------------


class _DefectiveStorage(MemoryStorage):
    """A memory storage whose units of work get one method replaced by ``defect``."""

    def __init__(self, repository: str, method: str, defect: Any) -> None:
        super().__init__()
        self._plant = (repository, method, defect)

    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        uow = super().unit_of_work(write=write)
        repository, method, defect = self._plant
        repo = getattr(uow, repository)
        setattr(repo, method, defect(getattr(repo, method)))
        return uow


def _drops_tags(save: Any) -> Any:
    return lambda ds: save(attrs.evolve(ds, tags=()))


def _loses_last_listed(list_: Any) -> Any:
    def listing(*args: Any, **kwargs: Any) -> Any:
        items = list_(*args, **kwargs)
        return items[:-1] if len(items) > 1 else items

    return listing


def _drops_descriptions(save: Any) -> Any:
    return lambda group: save(attrs.evolve(group, description=None))


@pytest.mark.parametrize(
    ("repository", "method", "defect"),
    [
        ("datasets", "save", _drops_tags),
        ("datasets", "list", _loses_last_listed),
        ("groups", "save", _drops_descriptions),
    ],
    ids=["update-drops-tags", "listing-loses-one", "group-update-drops-description"],
)
def test_the_machine_catches_a_defective_storage(repository, method, defect):
    machine = make_service_machine(
        lambda: memory_catalog(_DefectiveStorage(repository, method, defect))
    )
    with pytest.raises(AssertionError, match="differ"):
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=300,
                stateful_step_count=20,
                deadline=None,
                database=None,
                phases=[Phase.generate],  # finding it is the point; shrinking takes long
                suppress_health_check=list(HealthCheck),
            ),
        )
