"""One process-wide cache for loaded speech models: each distinct key is loaded once, by the first caller, and
shared by every call in the process afterwards (loading takes seconds; a call must never pay for it twice)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ModelCache(Generic[K, V]):
    """Thread-safe get-or-load: warm-up threads and the event loop may ask for the same model at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loaded: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K, load: Callable[[], V]) -> V:
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load()
            return self._loaded[key]

    def __contains__(self, key: object) -> bool:
        return key in self._loaded

    def __len__(self) -> int:
        return len(self._loaded)
