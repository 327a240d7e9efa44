"""What an edit would change, in the PR team's words: ``monitor check`` against the version in force.

The store keeps the text of every configuration version a worker applied
(``store.config_versions``). ``changes`` parses the version in force and the
files on disk with the same loaders the worker uses and compares meaning, not
text: "level 2 of policy critical: karim → an", "rule negative-burst: changed",
"source x:Lumora: query changed".
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from monitor.detect import RuleSet, load_rules
from monitor.durations import format_duration
from monitor.escalation import EscalationConfig
from monitor.escalation.schema import load_escalation
from monitor.reload import FILE_MARK
from monitor.sources.schema import CollectConfig, load_collect
from monitor.yamlconfig import ConfigInvalid


def _names(items: Iterable[str]) -> str:
    return ", ".join(items) or "nobody"


def escalation_changes(old: EscalationConfig, new: EscalationConfig) -> list[str]:
    out: list[str] = []
    for rid in sorted(set(old.responders) - set(new.responders)):
        out.append(f"responder {rid} removed (never called again, also on open incidents)")
    for rid in sorted(set(new.responders) - set(old.responders)):
        out.append(f"responder {rid} added")
    if old.business_hours != new.business_hours:
        out.append("business hours or holidays changed")
    if old.grouping != new.grouping:
        out.append(f"grouping window: {format_duration(old.grouping.window)} → {format_duration(new.grouping.window)}")
    before = {p.name: p for p in old.policies}
    after = {p.name: p for p in new.policies}
    for name in sorted(set(before) - set(after)):
        out.append(f"policy {name} removed (its open incidents follow the policy the new file chooses)")
    for name in sorted(set(after) - set(before)):
        out.append(f"policy {name} added")
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        for i in range(max(len(a.levels), len(b.levels))):
            la = a.levels[i] if i < len(a.levels) else None
            lb = b.levels[i] if i < len(b.levels) else None
            where = f"level {i + 1} of policy {name}"
            if la is None:
                out.append(f"{where}: added ({_names(lb.notify if lb else [])})")
            elif lb is None:
                out.append(f"{where}: removed")
            else:
                if la.notify != lb.notify:
                    out.append(f"{where}: {_names(la.notify)} → {_names(lb.notify)}")
                if la.ack_within != lb.ack_within:
                    out.append(f"{where}: acknowledge within {format_duration(la.ack_within)} → "
                               f"{format_duration(lb.ack_within)}")
                if la.channel != lb.channel:
                    out.append(f"{where}: channel {la.channel or 'none'} → {lb.channel or 'none'}")
        for key in ("after_hours", "on_call", "repeat", "remind_every", "auto_resolve_after", "match"):
            if getattr(a, key) != getattr(b, key):
                out.append(f"policy {name}: {key} changed")
    if old.guidelines != new.guidelines:
        out.append("response guidelines changed")
    return out


def rule_changes(old: RuleSet, new: RuleSet) -> list[str]:
    before = {r.name: r for r in old.rules}
    after = {r.name: r for r in new.rules}
    out = [f"rule {n}: removed" for n in sorted(set(before) - set(after))]
    out += [f"rule {n}: added" for n in sorted(set(after) - set(before))]
    out += [f"rule {n}: changed" for n in sorted(set(before) & set(after)) if before[n] != after[n]]
    return out


def collect_changes(old: CollectConfig, new: CollectConfig) -> list[str]:
    from monitor.sources.factory import configured

    before = {s.name: s for s in configured(old)}
    after = {s.name: s for s in configured(new)}
    out = [f"source {n}: removed (its cursor is kept: adding it back continues)"
           for n in sorted(set(before) - set(after))]
    out += [f"source {n}: added" for n in sorted(set(after) - set(before))]
    for n in sorted(set(before) & set(after)):
        if before[n].target != after[n].target:
            out.append(f"source {n}: {before[n].target!r} → {after[n].target!r} (starts a new cursor)")
        elif before[n] != after[n]:
            out.append(f"source {n}: interval or budget changed")
    return out


def _write(folder: Path, kind: str, content: str) -> Path:
    """Put a stored version back into files, so the worker's own loaders can read it."""
    if kind != "rules":
        path = folder / f"{kind}.yaml"
        path.write_text(content, encoding="utf-8")
        return path
    rules = folder / "rules"
    rules.mkdir()
    name: str | None = None
    lines: list[str] = []
    for line in content.split("\n"):
        if line.startswith(FILE_MARK) and line.endswith((".yaml", ".yml")):
            if name is not None:
                (rules / name).write_text("\n".join(lines), encoding="utf-8")
            name, lines = line[len(FILE_MARK):], []
        else:
            lines.append(line)
    if name is not None:
        (rules / name).write_text("\n".join(lines), encoding="utf-8")
    return rules


def changes(kind: str, stored: str, on_disk: Path) -> list[str]:
    """What the files on disk change against the stored version (raises ConfigInvalid for the files)."""
    with tempfile.TemporaryDirectory(prefix="monitor-in-force-") as tmp:
        old_path = _write(Path(tmp), kind, stored)
        try:
            if kind == "escalation":
                return escalation_changes(load_escalation(old_path), load_escalation(on_disk))
            if kind == "rules":
                return rule_changes(load_rules(old_path), load_rules(on_disk))
            return collect_changes(load_collect(old_path), load_collect(on_disk))
        except ConfigInvalid as exc:
            if any(str(old_path) in str(e) for e in exc.errors):
                return ["the version in force no longer validates with this release; compare by hand"]
            raise
