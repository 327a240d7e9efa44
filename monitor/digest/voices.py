"""Who posted, as the digest may say it: reach classes for everyone, names only above the reach threshold.

The lawyer's line: no score per person. A class of authors gets a negative
share only when it holds enough people not to describe one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CLASS_AUTHORS = 5  # a reach class with fewer authors shows no negative share: it would describe a person


@dataclass(frozen=True, slots=True)
class NamedAuthor:
    """An account above the reach threshold: named, with no score of its own (no per-person negativity)."""

    handle: str
    reach: int
    posts: int


@dataclass(frozen=True, slots=True)
class ReachClass:
    """Authors within one band of followers, counted together: ``low`` ≤ reach < ``high`` (None: no bound)."""

    low: int
    high: int | None
    authors: int
    posts: int
    negative: int

    @property
    def negative_share(self) -> float | None:
        """Negative posts of the class; None for fewer than ``MIN_CLASS_AUTHORS`` authors (it would point at one)."""
        if self.authors < MIN_CLASS_AUTHORS or not self.posts:
            return None
        return self.negative / self.posts


@dataclass(frozen=True, slots=True)
class Voices:
    """Who posted: reach classes for everyone, handles only for accounts above the reach threshold."""

    named: tuple[NamedAuthor, ...]
    other_authors: int
    other_posts: int
    classes: tuple[ReachClass, ...] = ()
