"""Schemathesis over the whole OpenAPI, against the real app on a real HTTP server with a real Temporal server:
keys of every role of one space, another space's owner, the platform key and no key at all. No answer may be a
5xx, and every answer must be a documented status with the documented schema (errors: ``ErrorBody``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.testing import WorkflowEnvironment

from models.enums import Role
from tests.api.resources import agent_body, carrier_account_body, create, phone_number_body, sip_trunk_body
from tests.support.stack import running_stack, serve_http

EXAMPLES_PER_MODE = 8  # per operation, positive and negative each: ~750 requests, reproducible (derandomized)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


def _fuzz(
    spec: dict[str, Any], base_url: str, keys: list[str | None], ids: dict[str, list[str]], seen: Counter[int]
) -> list[str]:
    schema = schemathesis.openapi.from_dict(spec)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the app's own OpenAPI does not load: {result.err()}"
        operations.append(result.ok())
    # Deleting the space would leave nothing to test: it goes last.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE" and op.path == "/v1/spaces/{space_id}", op.label))
    failures: list[str] = []
    for operation in operations:
        cases = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | operation.as_strategy(
            generation_mode=GenerationMode.NEGATIVE
        )

        @settings(
            max_examples=2 * EXAMPLES_PER_MODE,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases, key=st.sampled_from(keys), data=st.data())
        def probe(case: Any, key: str | None, data: st.DataObject) -> None:
            for name, real in ids.items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = data.draw(st.sampled_from([*real, case.path_parameters[name]]))
            headers = dict(case.headers or {})
            headers.pop("authorization", None)
            if key is not None:
                headers["Authorization"] = f"Bearer {key}"
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            seen[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            probe()
        except (Exception, BaseExceptionGroup) as exc:  # collected so that one run reports every operation that fails
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    return failures


async def test_every_operation_answers_as_documented(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_stack(temporal_env, tmp_path) as stack:
        assert stack.app is not None
        mine, theirs = await stack.new_space("mine"), await stack.new_space("theirs")
        ids: dict[str, list[str]] = {"space_id": [mine.id, theirs.id]}
        for space in (mine, theirs):
            number = await phone_number_body(stack.client, space)
            created = await create(stack.client, space, "phone-numbers", number)
            ids.setdefault("number_id", []).append(created["id"])
            ids.setdefault("agent_id", []).append(number["agent_id"])
            ids.setdefault("trunk_id", []).append(number["sip_trunk_id"])
            ids.setdefault("trunk_id", []).append(
                (await create(stack.client, space, "sip-trunks", sip_trunk_body()))["id"]
            )
            ids.setdefault("agent_id", []).append((await create(stack.client, space, "agents", agent_body()))["id"])
            account = await create(stack.client, space, "carrier-accounts", carrier_account_body())
            ids.setdefault("account_id", []).append(account["id"])
            key = await create(stack.client, space, "api-keys", {"name": "spare", "role": "viewer"})
            ids.setdefault("key_id", []).append(key["id"])
        keys: list[str | None] = [*(mine.keys[role] for role in Role), theirs.keys[Role.OWNER], stack.admin_key, None]
        seen: Counter[int] = Counter()
        async with serve_http(stack.app) as base_url:
            failures = await asyncio.to_thread(_fuzz, stack.app.openapi(), base_url, keys, ids, seen)
    assert not failures, "\n\n".join(failures)
    print(f"answers by status: {sorted(seen.items())}")
    # The run reached the routes' logic, not only the doors: successes, refusals by role and space, bad input.
    assert {200, 201, 204, 401, 403, 404, 422} <= set(seen), seen
