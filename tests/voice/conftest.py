"""Fixtures the voice tests share."""

from tests.support.media_processes import media_processes

__all__ = ["media_processes"]
