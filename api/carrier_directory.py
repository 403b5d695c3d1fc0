"""What every carrier webhook looks up before it can act: the accounts that may have signed it (with their auth
tokens decrypted) and the space's number it names. Cached in the API process so a burst of webhooks does not
pay two database round trips and a decryption per request.

Staleness is bounded: an entry lives ``ttl`` seconds (``TELEPHONY_DIRECTORY_CACHE_SECONDS``), and this process's
own REST writes to carrier accounts and numbers forget everything at once. Only what exists is cached: an unknown
AccountSid or number is looked up again every time, so a number bought a moment ago (by a worker) is found.
What a stale entry could let through is bounded too: the call's workflow routes it from the database again.

A burst arriving as an entry expires makes one lookup, which the others wait for: fifty webhooks missing together
used to queue fifty queries for the database's connections (bench.ingress p99 630-790 ms in the rounds that began
after an expiry, against 260-300 in the others)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.enums import CarrierProvider, MediaMode
from models.secret_box import SecretBox
from models.tables import CarrierAccount, PhoneNumber

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class SigningAccount:
    """A carrier account as the webhooks need it: which space it is, and the token that signs for it."""

    id: str
    space_id: str
    account_sid: str
    auth_token: str


@dataclass(frozen=True)
class KnownNumber:
    id: str
    space_id: str
    e164: str
    media_mode: MediaMode
    enabled: bool
    sms_enabled: bool


class _TtlCache(Generic[K, V]):
    """A bounded map whose entries expire; the oldest go first when it is full."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float]) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class CarrierDirectory:
    def __init__(
        self,
        box: SecretBox,
        sessions: async_sessionmaker[AsyncSession],
        ttl: float,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._box = box
        self._sessions = sessions
        self._accounts: _TtlCache[tuple[str, int], tuple[SigningAccount, ...]] = _TtlCache(ttl, size, clock)
        self._numbers: _TtlCache[tuple[str, str], KnownNumber] = _TtlCache(ttl, size, clock)
        self._lookups: dict[Hashable, asyncio.Future[Any]] = {}
        self._generation = 0  # forget() moves it on: a lookup begun before then caches nothing
        self.lookups_made = 0

    async def twilio_accounts(self, account_sid: str, limit: int) -> tuple[SigningAccount, ...]:
        """The (at most ``limit``) Twilio accounts stored under ``account_sid``, oldest first."""
        key = (account_sid, limit)
        if (cached := self._accounts.get(key)) is not None:
            return cached
        found: tuple[SigningAccount, ...] = await self._once(("accounts", key), self._load_accounts, key)
        return found

    async def number(self, space_id: str, e164: str) -> KnownNumber | None:
        """``space_id``'s number ``e164``: another space's number is, here, an unknown one."""
        key = (space_id, e164)
        if (cached := self._numbers.get(key)) is not None:
            return cached
        number: KnownNumber | None = await self._once(("number", key), self._load_number, key)
        return number

    def forget(self) -> None:
        """A carrier account or number changed in this process: look everything up afresh."""
        self._accounts.clear()
        self._numbers.clear()
        self._lookups.clear()
        self._generation += 1

    async def _once(self, key: Hashable, load: Callable[[Any, int], Awaitable[Any]], arg: Any) -> Any:
        """One lookup per key at a time, in a task of its own: a request that goes away does not end it for the
        others waiting on it."""
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = self._lookups[key] = asyncio.ensure_future(load(arg, self._generation))
            lookup.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(lookup)

    def _finished(self, key: Hashable, lookup: asyncio.Future[Any]) -> None:
        if self._lookups.get(key) is lookup:
            del self._lookups[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: every request waiting on it may have gone

    async def _load_accounts(self, key: tuple[str, int], generation: int) -> tuple[SigningAccount, ...]:
        account_sid, limit = key
        self.lookups_made += 1
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CarrierAccount)
                .where(CarrierAccount.provider == CarrierProvider.TWILIO, CarrierAccount.account_sid == account_sid)
                .order_by(CarrierAccount.created_at, CarrierAccount.id)
                .limit(limit)
            )
            found = tuple(
                SigningAccount(row.id, row.space_id, row.account_sid, self._box.decrypt(row.secret_encrypted))
                for row in rows
            )
        if found and generation == self._generation:
            self._accounts.put(key, found)
        return found

    async def _load_number(self, key: tuple[str, str], generation: int) -> KnownNumber | None:
        space_id, e164 = key
        self.lookups_made += 1
        async with self._sessions() as session:
            row = await session.scalar(
                select(PhoneNumber).where(PhoneNumber.e164 == e164, PhoneNumber.space_id == space_id)
            )
        if row is None:
            return None
        number = KnownNumber(row.id, row.space_id, row.e164, row.media_mode, row.enabled, row.sms_enabled)
        if generation == self._generation:
            self._numbers.put(key, number)
        return number
