"""Encryption of secrets at rest (carrier tokens, SIP passwords, LLM keys) with Fernet.

Several keys may be configured for rotation: the first encrypts, all decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(Exception):
    pass


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretBoxError("at least one encryption key is required")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as exc:
            raise SecretBoxError("an encryption key is not a valid Fernet key") from exc
        self._keys = [key.encode() for key in keys]

    @classmethod
    def from_setting(cls, value: str | None, data_dir: Path) -> SecretBox:
        """Keys from the setting, or a key generated once into ``data_dir/secret.key``."""
        if value:
            return cls([k.strip() for k in value.split(",") if k.strip()])
        key_file = data_dir / "secret.key"
        if not key_file.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_bytes(Fernet.generate_key())
            key_file.chmod(0o600)
        return cls([key_file.read_text().strip()])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError("secret cannot be decrypted with the configured keys") from exc

    def sign(self, purpose: str, message: str) -> str:
        """An HMAC-SHA256 of ``message`` under a key derived from the first key for ``purpose`` (URL-safe)."""
        return self._mac(self._keys[0], purpose, message)

    def signature_valid(self, purpose: str, message: str, signature: str) -> bool:
        """Whether ``signature`` is :meth:`sign`'s for ``message`` under any configured key (rotation)."""
        return any(hmac.compare_digest(self._mac(key, purpose, message), signature) for key in self._keys)

    @staticmethod
    def _mac(key: bytes, purpose: str, message: str) -> str:
        derived = hmac.new(key, f"bivariant:{purpose}".encode(), hashlib.sha256).digest()
        digest = hmac.new(derived, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
