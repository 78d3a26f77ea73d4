"""The password hashing port."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["PasswordHasher"]


class PasswordHasher(ABC):
    """Turns passwords into self-describing hashes and checks them.

    ``hash`` must salt every call (two hashes of one password differ); ``verify`` must compare
    in constant time and return False (never raise) for a wrong password or a malformed hash.
    """

    @abstractmethod
    def hash(self, password: str) -> str:
        """A salted hash of ``password``, safe to store."""

    @abstractmethod
    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``."""
