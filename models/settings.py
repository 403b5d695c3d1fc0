"""Process settings, read from the environment (prefix ``TELEPHONY_``) or a ``.env`` file.

Built once per process at start-up (CLI, lifespan, worker) and passed down: never read at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

SEARCH_ATTRIBUTES = {
    "CallState": "Keyword",
    "SpaceId": "Keyword",
    "CallDirection": "Keyword",
    "PhoneNumber": "Keyword",
    "SmsThreadState": "Keyword",
    "CampaignId": "Keyword",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELEPHONY_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".telephony")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; defaults to SQLite in the data dir"
    )
    secret_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys encrypting secrets at rest; the first encrypts. "
        "Defaults to a key generated once into the data dir.",
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "telephony"
    worker_max_cached_workflows: int = Field(
        default=400,
        ge=0,
        description="Workflows a worker keeps in memory (~0.3 MB each, sandboxed); others replay on their next event",
    )
    workflow_sandbox: bool = Field(
        default=False,
        description="Run the call role's workflows in Temporal's sandbox. Off by default: the sandbox re-executes "
        "the workflow modules for every run (a third less call-opening throughput, bench.concurrency). The test "
        "suite and every replay run them sandboxed, where a non-deterministic call fails at once",
    )

    log_format: Literal["json", "console"] = Field(
        default="json", description="json: one JSON object per line (production); console: key=value lines"
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(
        default=1, ge=1, le=64, description="API processes sharing the port (webhooks are CPU-bound: up to the cores)"
    )
    api_access_log: bool = Field(
        default=False, description="Log every HTTP request (uvicorn's access log); costs CPU on the webhook path"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="URL carriers use to reach the API: signatures and stream URLs are built from it",
    )

    media_host: str = "127.0.0.1"
    media_port: int = 8001
    media_public_url: str | None = Field(
        default=None,
        description="URL carriers open media streams on (the media servers, `telephony media`); default: public_url",
    )
    reattach_line: str = Field(
        default="Sorry about that, where were we?",
        description="What an agent says when it comes back to a call whose voice process died (no second greeting)",
    )

    # Request body limits (413 beyond them), by route family: see api/limits.py.
    webhook_body_limit: int = Field(
        default=64 * 1024, ge=1024, description="Bytes of a carrier or LiveKit webhook body (Twilio forms are ~2 KB)"
    )
    api_body_limit: int = Field(default=256 * 1024, ge=1024, description="Bytes of a REST request body")
    agent_body_limit: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Bytes of an agent body (instructions and knowledge base)"
    )
    asset_upload_limit: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Bytes of an uploaded audio asset (the request body of POST /v1/spaces/{id}/assets)",
    )
    asset_max_seconds: float = Field(
        default=300.0, gt=0, le=3600, description="Seconds an uploaded audio asset may last (a prompt or a message)"
    )
    directory_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds the API keeps carrier accounts and numbers looked up by webhooks (0: no cache); "
        "its own REST changes to them apply at once",
    )
    twilio_accounts_per_sid: int = Field(
        default=4, ge=1, description="Carrier accounts sharing one AccountSid tried when verifying a signature"
    )
    media_stream_start_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a media stream may stay open without its 'start' message"
    )
    media_stream_max_message: int = Field(
        default=64 * 1024, ge=1024, description="Bytes of one media-stream text message (Twilio's are ~0.5 KB)"
    )
    media_drain_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM, seconds a media process lets its calls finish before handing them to another one",
    )
    media_processes: int = Field(
        default=1, ge=1, le=64, description="`telephony dev`: media processes sharing the media port (SO_REUSEPORT)"
    )
    media_reuse_port: bool = Field(
        default=False,
        description="`telephony media` listens with SO_REUSEPORT: several share one port, the kernel spreads streams",
    )
    media_nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="Nice increment of `telephony media` (e.g. 5 where it shares cores with the API and worker: speech "
        "work yields the CPU to webhooks; too much starves its carry_media heartbeat and moves live calls)",
    )
    voice_cpu_threads: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Threads of a media process's Whisper (CTranslate2): 0 = the machine's cores divided by "
        "TELEPHONY_MEDIA_PROCESSES (at least 1), so media processes sharing the cores do not fight over them",
    )
    voice_partials_when_busy: bool = Field(
        default=False,
        description="Where interim transcripts are shown (the console; phone calls transcribe only at the caller's "
        "pauses), re-transcribe an utterance still being spoken even while Whisper works for another call; off: "
        "partials only when the model is idle",
    )
    voice_speculative_reply: bool = Field(
        default=True,
        description="Prepare the agent's reply (LLM and the first sentence's audio) when the caller pauses, while "
        "the VAD waits out the rest of its end-of-speech silence; it plays only if the turn ends on the same "
        "transcript (off: the reply starts at the end of speech)",
    )
    voice_tts_cache_mb: int = Field(
        default=32,
        ge=0,
        le=4096,
        description="MB of synthesised sentences a media process keeps and replays (greetings, announcements, "
        "repeated answers) for voices whose output is deterministic; 0: synthesise every time",
    )

    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None
    livekit_agent_name: str = "bivariant-agent"
    livekit_sip_host: str | None = Field(
        default=None, description="Host of LiveKit SIP that carriers dial for media mode 'livekit'"
    )

    twilio_api_base_url: str = "https://api.twilio.com"

    storage_backend: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "telephony"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_region: str = "us-east-1"
    s3_key_prefix: str = Field(default="", description="Prefix of every key in the bucket (before spaces/<id>/)")
    s3_create_bucket: bool = Field(default=False, description="Create the bucket at start-up if it is missing")
    storage_dir: Path | None = Field(default=None, description="Folder of the local store; default DATA_DIR/storage")
    storage_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of local download URLs (the same on every API replica); "
        "defaults to a key generated once into the data dir",
    )
    download_url_ttl_seconds: int = Field(default=300, ge=10, le=3600, description="Lifetime of a download URL")
    transcription_cpu_threads: int = Field(default=2, ge=1, le=16, description="Threads of the recording transcriber")

    @property
    def resolved_voice_cpu_threads(self) -> int:
        """Whisper threads of one media process (see ``voice_cpu_threads``)."""
        if self.voice_cpu_threads:
            return self.voice_cpu_threads
        return max(1, len(os.sched_getaffinity(0)) // self.media_processes)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telephony.db').resolve()}"

    @property
    def stream_public_url(self) -> str:
        return self.media_public_url or self.public_url

    @property
    def livekit_configured(self) -> bool:
        return bool(self.livekit_url and self.livekit_api_key and self.livekit_api_secret)
