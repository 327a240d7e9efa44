"""Shared by the console tests: a users file, a small stand-in sentiment model, sign-in through the real form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from monitor.console.users import hash_password
from monitor.models import SentimentScores

PASSWORD = "correct horse battery staple"
NEGATIVE_WORDS = ("scam", "oplichting", "terrible", "schandalig", "arnaque", "boycott")


def write_users(folder: Path) -> Path:
    """sofie: responder and editor; karim: responder on the critical policy, not an editor; guest: neither."""
    digest = hash_password(PASSWORD)
    path = folder / "console-users.yaml"
    path.write_text(
        "users:\n"
        f"  sofie: {{password_hash: '{digest}', editor: true}}\n"
        f"  karim: {{password_hash: '{digest}'}}\n"
        f"  guest: {{password_hash: '{digest}', responder: nobody}}\n", encoding="utf-8")
    return path


class WordModel:
    """Negative when the text holds an angry word: fast and predictable for tests that are not about the model."""

    name = "test-words"
    version = "1"

    def predict(self, texts: Sequence[str]) -> list[SentimentScores]:
        out = []
        for text in texts:
            angry = any(w in text.lower() for w in NEGATIVE_WORDS)
            out.append(SentimentScores(0.9, 0.07, 0.03) if angry else SentimentScores(0.05, 0.35, 0.6))
        return out


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)
