"""Settings: which backends a catalog uses and the site's policy switches.

Settings come from keyword arguments, ``OPENCATALOG_*`` environment variables or a TOML file
(a ``[opencatalog]`` table or top-level keys). Later sources override earlier ones in
:func:`load_settings`: file, then environment, then keyword arguments.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from opencatalog.errors import ConfigurationError

__all__ = ["Settings", "load_settings"]

ENV_PREFIX = "OPENCATALOG_"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigurationError(f"Not a boolean: {value!r}")


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings from a list or a comma-separated string (environment variables)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(part) for part in value)


def _ports(value: Any) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _strings(value))
    except ValueError as exc:
        raise ConfigurationError(f"Not a list of port numbers: {value!r}") from exc


@frozen(kw_only=True)
class Settings:
    """Everything a catalog is built from.

    ``storage``: a storage URL (``memory://``, ``sqlite:///path.db``,
    ``postgresql+psycopg://user@host/db``). ``search``: a search index URL (``memory://``,
    ``tantivy:///path``, ``whoosh:///path``; ``none`` for no search). ``index_delay``: seconds
    the background indexer waits to batch writes into one index commit (0: index before each
    write returns; searches always see every committed write either way).
    ``queue``: the job queue URL (``sql://``: a job table in the catalog's SQL storage, the
    default, taken as ``memory://`` when the storage is not SQL; ``memory://``).
    ``password_hash_params``: Argon2 parameters (``time_cost``, ``memory_cost``...) for the
    password hasher. The policy switches are those
    of :class:`opencatalog.domain.permissions.Policy`.

    Uploads: ``upload_max_bytes`` is the largest file accepted (100 MiB by default);
    ``secret_key`` signs upload URLs (default: a folder catalog's ``secret_key`` file, made
    with mode 0600 on first open; otherwise a random key per process).

    Files and jobs: ``blobs`` is the blob store URL (``memory://``; ``file:///path`` or
    ``s3://bucket/prefix`` through fsspec; a catalog folder defaults to its ``blobs/``
    subfolder). ``run_jobs_in_process``: the catalog runs its own background jobs (the
    resource pipeline) on a worker thread, woken after each commit that enqueued one; turn
    it off when separate ``opencatalog worker`` processes run them. ``job_deadline``: seconds
    a job handler may run before a worker gives up on it. ``fetch_max_bytes`` and
    ``fetch_timeout`` bound each download of an external resource URL (default 100 MB and
    30 s), ``fetch_host_interval`` is the minimum time between two requests to one host,
    ``fetch_allowed_ports`` the ports the fetcher may connect to, and
    ``fetch_allowed_networks`` networks (CIDR) it may reach although they are not public
    (an intranet server; empty by default: only public addresses).
    """

    storage: str = "memory://"
    search: str = "memory://"
    index_delay: float = attrs.field(default=0.5, converter=float)
    queue: str = "sql://"
    sqlite_synchronous: str = "full"
    create_unowned_dataset: bool = attrs.field(default=False, converter=_bool)
    user_create_organizations: bool = attrs.field(default=False, converter=_bool)
    user_create_groups: bool = attrs.field(default=True, converter=_bool)
    password_hash_params: Mapping[str, int] = attrs.field(factory=dict)
    upload_max_bytes: int = attrs.field(default=100 * 1024 * 1024, converter=int)
    secret_key: str | None = attrs.field(default=None, repr=False)
    blobs: str = "memory://"
    run_jobs_in_process: bool = attrs.field(default=True, converter=_bool)
    job_deadline: float = attrs.field(default=600.0, converter=float)
    fetch_max_bytes: int = attrs.field(default=100 * 1024 * 1024, converter=int)
    fetch_timeout: float = attrs.field(default=30.0, converter=float)
    fetch_host_interval: float = attrs.field(default=1.0, converter=float)
    fetch_allowed_ports: tuple[int, ...] = attrs.field(
        default=(80, 443, 8080, 8443), converter=_ports
    )
    fetch_allowed_networks: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Settings:
        """Settings from a dict; unknown keys raise ConfigurationError."""
        names = {f.name for f in attrs.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigurationError(f"Unknown settings: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from exc

    @staticmethod
    def env_values(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The settings given as ``OPENCATALOG_<NAME>`` environment variables."""
        env = os.environ if environ is None else environ
        out: dict[str, Any] = {}
        for f in attrs.fields(Settings):
            key = ENV_PREFIX + f.name.upper()
            if key in env and f.name != "password_hash_params":
                out[f.name] = env[key]
        return out

    @staticmethod
    def file_values(path: str | Path) -> dict[str, Any]:
        """The settings in a TOML file."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"Cannot read settings file {path}: {exc}") from exc
        table = data.get("opencatalog", data)
        if not isinstance(table, dict):
            raise ConfigurationError(f"{path}: [opencatalog] must be a table")
        return dict(table)


def load_settings(
    *, file: str | Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Settings from a TOML file (or ``OPENCATALOG_CONFIG``), then the environment, then
    keyword arguments, each overriding the one before."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    file = file or env.get(ENV_PREFIX + "CONFIG")
    if file:
        values.update(Settings.file_values(file))
    values.update(Settings.env_values(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.from_mapping(values)
