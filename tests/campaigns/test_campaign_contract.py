"""The campaign contract is defined once, like the call's: the workflow's handlers carry the published names, and
nothing outside ``workflows/`` names a campaign update, signal or query by string or constant."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from temporalio.workflow import _QueryDefinition, _SignalDefinition

from models import campaigns as m
from workflows.campaign import CampaignWorkflow

ROOT = Path(__file__).resolve().parents[2]
NAMES: dict[str, Any] = {
    m.UPDATE_PAUSE: CampaignWorkflow.pause,
    m.UPDATE_RESUME: CampaignWorkflow.resume,
    m.UPDATE_CANCEL: CampaignWorkflow.cancel,
    m.UPDATE_UPDATE_LIMITS: CampaignWorkflow.update_limits,
    m.SIGNAL_CONTACTS_ADDED: CampaignWorkflow.contacts_added,
    m.QUERY_PROGRESS: CampaignWorkflow.get_progress,
}
CONSTANTS = {n for n in dir(m) if n.startswith(("SIGNAL_", "UPDATE_", "QUERY_"))}
SENDERS = {"signal", "execute_update", "start_update", "query"}


def test_the_handlers_carry_the_published_names() -> None:
    assert set(NAMES) == {getattr(m, n) for n in CONSTANTS}
    for name, handler in NAMES.items():
        update = getattr(handler, "_defn", None)
        definition = update or _SignalDefinition.from_fn(handler) or _QueryDefinition.from_fn(handler)
        assert definition is not None and definition.name == name, handler


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        for argument in node.args[:1] if called in SENDERS else []:
            literal = isinstance(argument, ast.Constant) and argument.value in NAMES
            constant = isinstance(argument, ast.Attribute | ast.Name) and (
                getattr(argument, "attr", None) in CONSTANTS or getattr(argument, "id", None) in CONSTANTS
            )
            if literal or constant:
                found.append(f"{path}:{node.lineno}")
    return found


def test_no_campaign_name_is_sent_by_string_outside_workflows(tmp_path: Path) -> None:
    sources = [
        p for folder in ("api", "activities", "workers", "bench", "tests") for p in (ROOT / folder).rglob("*.py")
    ]
    assert [o for path in sources for o in _offences(path)] == []
    bad = tmp_path / "bad.py"
    bad.write_text('await handle.signal("contacts_added", event)\nawait h.execute_update(m.UPDATE_PAUSE, r)\n')
    assert len(_offences(bad)) == 2
