"""How a test reads pacing: the carrier requests of one number never go faster than its token bucket."""

from __future__ import annotations

from datetime import datetime


def over_pace(times: list[datetime], rate: float, burst: int, slack: int = 1) -> list[tuple[int, int, float]]:
    """Every run of requests ``i..j`` more numerous than the bucket allows over its span: ``burst`` at once, then
    ``rate`` a second, plus ``slack`` messages (a slot may be used up to its validity after it opened). Empty when
    the requests kept the pace; each offence is (first index, last index, span in seconds)."""
    ordered = sorted(times)
    offences = []
    for i, first in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            span = (ordered[j] - first).total_seconds()
            if j - i + 1 > burst + slack + rate * span + 1e-6:
                offences.append((i, j, round(span, 3)))
    return offences
