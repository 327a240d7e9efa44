"""Who may use the console: a YAML file the operator writes, one entry per person.

Passwords are stored only as argon2id hashes (``monitor console hash-password``),
so the file can be read by the worker's account without holding any password.
What a person may do follows from two fields: ``responder`` (their id in
``escalation.yaml``: they may act on the incidents of policies that call them,
exactly as with the Slack buttons) and ``editor`` (they may add and expire
silences). Everyone listed may look.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.yamlconfig import parse

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a real password")


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    password_hash: str | None = Field(
        default=None, description="argon2 hash from `monitor console hash-password`; none: proxy sign-in only")
    responder: str | None = Field(default=None, description="Their id in escalation.yaml (default: the user name)")
    editor: bool = Field(default=False, description="May add and expire silences")

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("$argon2"):
            raise ValueError("not an argon2 hash: create one with `monitor console hash-password`")
        return value


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: dict[str, UserEntry] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    name: str
    responder: str  # escalation.yaml id this person acts as
    editor: bool


class UserDirectory:
    """The signed-in people the console knows; ``load`` raises ``ConfigInvalid`` (file:line:col)."""

    def __init__(self, entries: dict[str, UserEntry]) -> None:
        self._entries = dict(entries)

    @classmethod
    def load(cls, path: Path) -> UserDirectory:
        return cls(parse(UsersFile, path).users)

    @classmethod
    def empty(cls) -> UserDirectory:
        return cls({})

    def get(self, name: str) -> ConsoleUser | None:
        entry = self._entries.get(name)
        if entry is None:
            return None
        return ConsoleUser(name, entry.responder or name, entry.editor)

    def verify(self, name: str, password: str) -> ConsoleUser | None:
        """The user when the password matches their hash; None otherwise (same cost either way)."""
        entry = self._entries.get(name)
        stored = entry.password_hash if entry is not None else None
        try:
            _HASHER.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return self.get(name) if stored is not None else None


def hash_password(password: str) -> str:
    """An argon2id hash for the users file."""
    return _HASHER.hash(password)
