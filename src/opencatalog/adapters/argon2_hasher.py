"""Password hashing with Argon2id (argon2-cffi)."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from opencatalog.ports.security import PasswordHasher

__all__ = ["Argon2PasswordHasher"]


class Argon2PasswordHasher(PasswordHasher):
    """Argon2id with argon2-cffi's recommended parameters unless told otherwise.

    ``time_cost``/``memory_cost`` (KiB) may be lowered for tests; stored hashes carry their
    own parameters, so a change never breaks existing passwords.
    """

    def __init__(self, **params: Any) -> None:
        self._impl = _Argon2(**params)

    def hash(self, password: str) -> str:
        return self._impl.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._impl.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
