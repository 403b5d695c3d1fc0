"""Who may start a console call, and to what: the API key from ``hello`` (operator or above in the space) and
the agent, flow or number it names, which must belong to that space. The same rules as the REST API's
(``api/auth.py``), applied here because the console socket may be served by the media process."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.console_protocol import Close, Hello
from models.credentials import secret_matches, split_key
from models.enums import Role, RouteType
from models.tables import Agent, ApiKey, Flow, PhoneNumber, Space


class ConsoleRefused(Exception):
    """The call may not start: closed with ``code`` and ``reason``."""

    def __init__(self, code: Close, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ConsoleTarget:
    """Who calls (the key) and whom: an agent or a flow, reached directly or through one of the space's numbers
    (the number's route then picks which: ``flow_id`` is set only for a flow named directly)."""

    key_id: str
    space_id: str
    agent_id: str | None
    phone_number_id: str | None
    to: str  # the number's E.164, ``agent:<id>`` or ``flow:<id>``
    flow_id: str | None = None

    @property
    def caller(self) -> str:
        return f"web:{self.key_id}"


async def resolve(session: AsyncSession, hello: Hello) -> ConsoleTarget:
    key = await _key(session, hello.api_key)
    if key.space_id is not None and key.space_id != hello.space_id:
        raise ConsoleRefused(Close.NOT_FOUND, "space not found")
    if await session.get(Space, hello.space_id) is None:
        raise ConsoleRefused(Close.NOT_FOUND, "space not found")
    if not key.role.allows(Role.OPERATOR):
        raise ConsoleRefused(Close.FORBIDDEN, f"calling needs role 'operator' (key has '{key.role}')")
    if hello.agent_id is not None:
        agent = await session.get(Agent, hello.agent_id)
        if agent is None or agent.space_id != hello.space_id:
            raise ConsoleRefused(Close.NOT_FOUND, "agent not found")
        return ConsoleTarget(key.id, hello.space_id, agent.id, None, f"agent:{agent.id}")
    if hello.flow_id is not None:
        flow = await session.get(Flow, hello.flow_id)
        if flow is None or flow.space_id != hello.space_id:
            raise ConsoleRefused(Close.NOT_FOUND, "flow not found")
        return ConsoleTarget(key.id, hello.space_id, None, None, f"flow:{flow.id}", flow_id=flow.id)
    number = await session.get(PhoneNumber, hello.phone_number_id)
    if number is None or number.space_id != hello.space_id:
        raise ConsoleRefused(Close.NOT_FOUND, "phone number not found")
    if not number.enabled:
        raise ConsoleRefused(Close.REFUSED, "the number is disabled")
    if number.route_type is RouteType.FLOW and number.flow_id is not None:
        return ConsoleTarget(key.id, hello.space_id, None, number.id, number.e164)
    if number.route_type is not RouteType.AGENT or number.agent_id is None:
        raise ConsoleRefused(Close.REFUSED, "the number routes to no agent or flow")
    return ConsoleTarget(key.id, hello.space_id, number.agent_id, number.id, number.e164)


async def _key(session: AsyncSession, plaintext: str) -> ApiKey:
    parts = split_key(plaintext.strip())
    if parts is None:
        raise ConsoleRefused(Close.UNAUTHORIZED, "malformed API key")
    prefix, secret = parts
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not secret_matches(secret, key.secret_hash):
        raise ConsoleRefused(Close.UNAUTHORIZED, "invalid API key")
    if key.revoked_at is not None:
        raise ConsoleRefused(Close.UNAUTHORIZED, "API key revoked")
    return key
