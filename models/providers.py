"""The speech and LLM providers an agent may name, and what each needs to load in the voice runtime.

The API validates an agent against this table when it is written, so a broken agent is refused with a 422 naming
the field and what to install or set, not discovered by a caller. ``voice/speech`` and ``voice/local_llm`` build
the same providers from the same table.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Literal

Kind = Literal["stt", "tts", "llm"]


@dataclass(frozen=True)
class Provider:
    name: str
    kind: Kind
    module: str | None = None  # a plugin that must be importable (None: ships with the project)
    extra: str | None = None  # the project's optional extra that installs it
    package: str | None = None
    key_env: str | None = None  # the environment variable holding the provider's API key, for the voice processes

    @property
    def local(self) -> bool:
        return self.module is None


def _cloud(name: str, kind: Kind, key_env: str) -> Provider:
    """A cloud provider with its livekit plugin, installed by the project's extra of the same name."""
    return Provider(name, kind, f"livekit.plugins.{name}", name, f"livekit-plugins-{name}", key_env)


PROVIDERS: dict[tuple[Kind, str], Provider] = {
    (p.kind, p.name): p
    for p in (
        Provider("local-whisper", "stt"),
        Provider("local-hibari", "tts"),
        Provider("local-espeak", "tts"),
        Provider("local-kb", "llm"),
        Provider(
            "openai-compatible",
            "llm",
            "livekit.plugins.openai",
            "openai",
            "livekit-plugins-openai",
            None,  # the key is the agent's own (llm_api_key)
        ),
        Provider(
            "deepgram", "stt", "livekit.plugins.deepgram", "deepgram", "livekit-plugins-deepgram", "DEEPGRAM_API_KEY"
        ),
        Provider("openai", "stt", "livekit.plugins.openai", "openai", "livekit-plugins-openai", "OPENAI_API_KEY"),
        Provider("openai", "tts", "livekit.plugins.openai", "openai", "livekit-plugins-openai", "OPENAI_API_KEY"),
        Provider(
            "cartesia", "tts", "livekit.plugins.cartesia", "cartesia", "livekit-plugins-cartesia", "CARTESIA_API_KEY"
        ),
    )
}


def names(kind: Kind) -> list[str]:
    return [name for (k, name) in PROVIDERS if k == kind]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def provider_problem(kind: Kind, name: str) -> str | None:
    """Why the voice runtime could not load provider ``name`` for ``kind`` here, or ``None`` when it can."""
    provider = PROVIDERS.get((kind, name))
    if provider is None:
        return f"unknown {kind.upper()} provider {name!r}; available: {', '.join(names(kind))}"
    if provider.module is not None and not _importable(provider.module):
        return (
            f"{name!r} needs the {provider.package} plugin, which is not installed: "
            f"pip install 'bivariant-telephony[{provider.extra}]'"
        )
    if provider.key_env is not None and not os.environ.get(provider.key_env):
        return f"{name!r} needs {provider.key_env} set in the environment of the voice processes"
    return None
