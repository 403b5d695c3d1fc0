"""Temporal's sandbox runs each workflow's own module afresh for every new workflow instance, and passes the rest
through from the worker. A helper module that slips into the fresh load (``from workflows import call_state``: the
package's submodule is looked up past the sandbox's importer) runs again for every call, which tripled the cost
of a call's first workflow task (bench/call_setup.py); and a type module reached only as a package attribute
(``from models import calls``) is missing from the sandbox's ``sys.modules``, so the payload converter cannot
resolve its dataclasses' annotations. Our workflow modules import by full name; this keeps it so."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import CodeType

import pytest
import temporalio.workflow

import workflows
from workers.call_worker import CALL_WORKFLOWS, PACER_WORKFLOWS
from workers.speech_worker import SPEECH_WORKFLOWS
from workflows.sandbox import workflow_runner

ROOT = Path(workflows.__file__).resolve().parent.parent
PACKAGES = {"models", "workflows", "activities", "voice", "api", "workers", "storage"}
_executed: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _executed is not None and event == "exec" and args and isinstance(args[0], CodeType):
        _executed.append(args[0].co_filename)


sys.addaudithook(_audit)  # hooks cannot be removed: it records only while a test sets ``_executed``


def project_modules_run_by_new_instance(cls: type) -> set[str]:
    global _executed
    runner, defn = workflow_runner(), temporalio.workflow._Definition.must_from_class(cls)

    async def create() -> None:
        runner.prepare_workflow(defn)  # builds a sandboxed instance, as for each new workflow run

    _executed = []
    try:
        asyncio.run(create())
        ran = _executed
    finally:
        _executed = None
    files = [Path(f).resolve() for f in ran if f.endswith(".py")]
    ours = [f.relative_to(ROOT) for f in files if f.is_relative_to(ROOT) and f.relative_to(ROOT).parts[0] in PACKAGES]
    return {str(f) for f in ours}


@pytest.mark.parametrize("cls", [*CALL_WORKFLOWS, *PACER_WORKFLOWS, *SPEECH_WORKFLOWS], ids=lambda cls: cls.__name__)
def test_a_new_instance_runs_only_its_workflow_module(cls: type) -> None:
    own = str(Path(sys.modules[cls.__module__].__file__ or "").resolve().relative_to(ROOT))
    ran = project_modules_run_by_new_instance(cls)
    assert own in ran  # the hook sees the fresh load at all
    assert ran <= {own, "workflows/__init__.py"}


def test_every_models_module_with_dataclasses_is_known_inside_the_sandbox() -> None:
    import dataclasses
    import importlib
    import pkgutil

    import models

    with_dataclasses = set()
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"models.{info.name}")
        if any(dataclasses.is_dataclass(v) and v.__module__ == module.__name__ for v in vars(module).values()):
            with_dataclasses.add(module.__name__)
    package = Path(workflows.__file__).read_text()
    assert {
        name for name in with_dataclasses if f"import {name}\n" not in package and f"import {name} " not in package
    } == set()
