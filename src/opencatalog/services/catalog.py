"""The Catalog facade: every service of one catalog, acting for one principal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from opencatalog.domain.model import State
from opencatalog.domain.permissions import Actor
from opencatalog.errors import ConfigurationError, NotFound

from ._base import Principal, ServiceContext, resolve_actor
from .datasets import DatasetService, ResourceService
from .files import FileService
from .groups import GroupService
from .health import HealthService
from .indexing import Indexer
from .jobs import JobHandler, JobRunner, JobService
from .pipeline import PipelineService
from .search import SearchService
from .tags import ActivityService, LicenseService, TagService
from .users import TokenService, UserService

__all__ = ["Catalog"]


class Catalog:
    """A data catalog: datasets, resources, organizations, groups, users, tokens, tags.

    Build one with :func:`opencatalog.open_catalog`. The catalog you get acts as the system
    actor (the embedding application owns its catalog); :meth:`as_user`, :meth:`as_actor`
    and :meth:`anonymous` give views of the same catalog acting for someone else, with every
    permission checked. Views share the backends; closing the root closes them.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        principal: Principal | None = None,
        on_close: list[Callable[[], None]] | None = None,
        info: dict[str, Any] | None = None,
        indexer: Indexer | None = None,
        job_handlers: Mapping[str, JobHandler] | None = None,
        job_runner: JobRunner | None = None,
    ) -> None:
        self._ctx = ctx
        self._principal = principal or Principal.system()
        self._on_close = on_close if on_close is not None else []
        self._info = info or {}
        p = self._principal
        self.datasets = DatasetService(ctx, p)
        self.resources = ResourceService(ctx, p)
        self.organizations = GroupService(ctx, p, is_organization=True)
        self.groups = GroupService(ctx, p, is_organization=False)
        self.users = UserService(ctx, p)
        self.tokens = TokenService(ctx, p)
        self.tags = TagService(ctx, p)
        self.licenses = LicenseService(ctx, p)
        self.activities = ActivityService(ctx, p)
        self.jobs = JobService(ctx, p, handlers=job_handlers, runner=job_runner)
        self.pipeline = PipelineService(ctx, p)
        self._job_handlers = job_handlers
        self._job_runner = job_runner
        self.health = HealthService(ctx, p)
        self.files = FileService(ctx, p)
        self._search: SearchService | None = None
        if ctx.search_index is not None and indexer is not None:
            self._search = SearchService(ctx, p, index=ctx.search_index, indexer=indexer)
        self._indexer = indexer

    @property
    def search(self) -> SearchService:
        """Dataset search (CKAN package_search); needs a search index in the settings."""
        if self._search is None:
            raise ConfigurationError("This catalog has no search index (setting 'search')")
        return self._search

    # -- acting for someone ----------------------------------------------------------------

    def as_user(self, user: str) -> Catalog:
        """A view acting for the user with this id or name (NotFound if there is none).
        Memberships are read afresh on every call."""
        with self._ctx.storage.unit_of_work() as uow:
            found = uow.users.get(user) or uow.users.get_by_name(user)
        if found is None or found.state is not State.ACTIVE:
            raise NotFound("User not found")
        return self._view(Principal(user_id=found.id))

    def as_actor(self, actor: Actor) -> Catalog:
        """A view acting for an already resolved actor (for example from a token)."""
        return self._view(Principal(actor=actor))

    def anonymous(self) -> Catalog:
        """A view acting for an anonymous visitor."""
        return self._view(Principal.anonymous())

    def _view(self, principal: Principal) -> Catalog:
        return Catalog(
            self._ctx,
            principal=principal,
            on_close=[],
            info=self._info,
            indexer=self._indexer,
            job_handlers=self._job_handlers,
            job_runner=self._job_runner,
        )

    @property
    def actor(self) -> Actor:
        """The actor this catalog acts for (resolved now)."""
        with self._ctx.storage.unit_of_work() as uow:
            return resolve_actor(uow, self._principal)

    # -- life cycle --------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Facts about the catalog's backends, for ``opencatalog info``."""
        facts: dict[str, Any] = {**self._info, "storage": self._ctx.storage.describe()}
        if self._ctx.search_index is not None:
            st = self._ctx.search_index.stats()
            facts["search"] = {
                "backend": type(self._ctx.search_index).__name__,
                "documents": st.documents,
                "size_bytes": st.size_bytes,
            }
        return facts

    def close(self) -> None:
        """Release the backends (root catalog only; views do nothing)."""
        while self._on_close:
            self._on_close.pop()()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        who = self._principal.actor.name if self._principal.actor else self._principal.user_id
        return f"<Catalog {self._ctx.storage.describe().get('backend')} acting for {who}>"
