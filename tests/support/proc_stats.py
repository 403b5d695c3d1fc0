"""What /proc says about a process: CPU time so far. Tests and benches measure a child's cost with it."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included); NaN once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuMeter:
    """CPU seconds each named process spent since the last mark (one phase of a run)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._at = self._read()

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def spent(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self._at[name] for name, pid in self.pids.items()}

    def lap(self) -> dict[str, float]:
        """What each process spent since the last lap (or the start), and start a new lap."""
        now = self._read()
        spent = {name: now[name] - self._at[name] for name in now}
        self._at = now
        return spent
