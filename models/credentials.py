"""API key format, generation and verification. Keys look like ``bt_<prefix>_<secret>``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_SCHEME = "bt"


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of entropy, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> NewKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(plaintext=f"{KEY_SCHEME}_{prefix}_{secret}", prefix=prefix, secret_hash=hash_secret(secret))


def split_key(plaintext: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
