"""What a process's voices have already said: synthesised sentences kept (LRU, bounded in bytes) and replayed.

Calls repeat themselves: every call of an agent hears its greeting, the recording announcement and the re-attach
line; callers ask the same few questions, so the knowledge base's answers come back word for word. A voice whose
output is deterministic for a given text (hibari with a fixed seed) keys each sentence by voice, settings and text:
a repeated sentence then costs no synthesis (hibari: ~10 % of a media process's CPU at eight calls, and its first
audio comes at once). Voices with random output (seed ``None``) are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class PcmCache:
    """Thread-safe LRU of sentence audio (the 24 kHz int16 chunks a LocalTTS yields), at most ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[bytes, ...] | None:
        with self._lock:
            chunks = self._items.get(key)
            if chunks is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return chunks

    def put(self, key: Hashable, chunks: tuple[bytes, ...]) -> None:
        size = sum(len(c) for c in chunks)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= sum(len(c) for c in old)
            self._items[key] = chunks
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= sum(len(c) for c in dropped)

    @property
    def size_bytes(self) -> int:
        return self._bytes


_shared = PcmCache()


def shared_pcm_cache() -> PcmCache:
    """The process's cache every local voice uses."""
    return _shared


def configure_pcm_cache(max_bytes: int) -> None:
    """Start-up: the cache's bound (0 turns it off)."""
    with _shared._lock:
        _shared.max_bytes = max_bytes
        _shared._items.clear()
        _shared._bytes = 0
