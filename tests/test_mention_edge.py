"""``Mention``'s clean-up at the edge: every field, whether the post is clean or not.

Clean posts take one combined test (a backtest builds a million of them from
the store); these cases hold the field-by-field clean-up behind it to the same
answers: one dirty or over-long field among clean ones is still found and
fixed, and nothing clean is touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.models import COUNT_LIMIT, FIELD_LIMITS, Mention

AT = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


def post(**fields: object) -> Mention:
    base: dict[str, object] = {"source": "x", "source_id": "1", "brand": "Lumora", "text": "Lumora is slow",
                               "created_at": AT, "url": "https://x.com/a/status/1", "author_handle": "anna",
                               "language": "nl", "conversation_id": "c1"}
    return Mention(**{**base, **fields})  # type: ignore[arg-type]


def test_a_clean_post_is_kept_as_it_is() -> None:
    m = post()
    assert (m.source, m.source_id, m.brand, m.text, m.url, m.author_handle, m.language, m.conversation_id) == (
        "x", "1", "Lumora", "Lumora is slow", "https://x.com/a/status/1", "anna", "nl", "c1")
    assert m.created_at is AT


@pytest.mark.parametrize("name", sorted(FIELD_LIMITS))
def test_one_over_long_field_among_clean_ones_is_cut(name: str) -> None:
    limit = FIELD_LIMITS[name]
    m = post(**{name: "a" * (limit + 5)})
    assert getattr(m, name) == "a" * limit


@pytest.mark.parametrize("name", sorted(FIELD_LIMITS))
def test_one_control_character_among_clean_fields_is_removed(name: str) -> None:
    m = post(**{name: "ab\x00c\x0bd"})
    assert getattr(m, name) == "abc\nd"


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    assert post(text="bad \ud800 text").text == "bad \ufffd text"


def test_times_become_utc_and_counts_are_bounded() -> None:
    brussels = timezone(timedelta(hours=1))
    m = post(created_at=datetime(2026, 11, 18, 11, 0, tzinfo=brussels), author_reach=-3, engagement=2**40)
    assert m.created_at == AT and m.created_at.tzinfo is UTC
    assert (m.author_reach, m.engagement) == (0, COUNT_LIMIT)
    assert post(created_at=datetime(2026, 11, 18, 10, 0)).created_at == AT  # naive: taken as UTC
