"""The pacer's rule as pure data: a token bucket in its scheduling form (GCRA, the "virtual scheduling" algorithm).
One instant is the whole state: ``next_at``, when the next message would leave if every slot before it were used
at its opening. A request at ``now`` gets ``max(now, next_at - (burst - 1) / rate)``: ``burst`` slots open at once
from idle, then one every ``1 / rate`` seconds, first asked first served. No I/O, no workflow APIs: the caller
passes the time in, so it is deterministic and tested without a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.sms_pacing import PacerCarry, slot_validity


@dataclass
class PacerLedger:
    rate: float = 1.0
    burst: int = 1
    next_at: datetime | None = None
    granted_total: int = 0
    granted_in_run: int = 0
    runs: int = 1
    opened: list[datetime] = field(default_factory=list)  # openings of slots granted ahead (pruned as time passes)

    @classmethod
    def begin(cls, carry: PacerCarry | None) -> PacerLedger:
        if carry is None:
            return cls()
        return cls(carry.rate, carry.burst, carry.next_at, carry.granted_total, 0, carry.runs + 1)

    def reserve(self, now: datetime, rate: float, burst: int) -> tuple[datetime, datetime, int]:
        """A slot for a request at ``now``: (opens at, valid until, slots still ahead of it). ``rate`` and
        ``burst`` are the number's current settings (the latest request's win)."""
        self.rate, self.burst = rate, burst
        interval = timedelta(seconds=1.0 / rate)
        tolerance = interval * (burst - 1)
        theoretical = now if self.next_at is None or self.next_at < now else self.next_at
        at = max(now, theoretical - tolerance)
        self.next_at = max(theoretical, at) + interval
        self.opened = [x for x in self.opened if x > now]
        waiting = len(self.opened)
        if at > now:
            self.opened.append(at)
        self.granted_total += 1
        self.granted_in_run += 1
        return at, at + slot_validity(rate), waiting

    def idle_since(self) -> datetime | None:
        """From when the bucket is full again (every slot granted has opened and refilled): from then on a fresh
        pacer would grant exactly the same slots, so this one may complete."""
        return self.next_at

    def carry(self) -> PacerCarry:
        return PacerCarry(self.next_at, self.rate, self.burst, self.granted_total, self.runs)
