"""Every value the store holds, as one text: what the privacy and secrets tests search."""

from __future__ import annotations

import json

from sqlalchemy import Engine, MetaData, select


def dump_text(engine: Engine) -> str:
    """Every value of every column of every table, reflected from the database so nothing is left out."""
    meta = MetaData()
    meta.reflect(engine)
    parts: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    parts.append(json.dumps(value, default=str) if isinstance(value, dict | list) else str(value))
    return "\n".join(parts)
