from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, HttpUrl, SecretStr, model_validator

from models.schemas.common import Name, OutSchema, Schema, Timestamps, TransferTarget

SttProvider = Literal["local-whisper", "deepgram", "openai"]
TtsProvider = Literal["local-hibari", "local-espeak", "cartesia", "openai"]
LlmProvider = Literal["local-kb", "openai-compatible"]


class KnowledgeEntry(Schema):
    title: str = Field(min_length=1, max_length=500)
    content: str = Field(min_length=1, max_length=20_000)


class KnowledgeEntryOut(OutSchema):
    title: str
    content: str


class AgentFields(Schema):
    name: Name
    instructions: str = Field(default="", max_length=20_000)
    greeting: str = Field(default="", max_length=2_000)
    knowledge_base: list[KnowledgeEntry] = Field(default_factory=list, max_length=2_000)
    voice: str = Field(default="heart", min_length=1, max_length=64)
    stt_provider: SttProvider = "local-whisper"
    tts_provider: TtsProvider = "local-hibari"
    llm_provider: LlmProvider = "local-kb"
    llm_model: str | None = Field(default=None, max_length=128)
    llm_base_url: HttpUrl | None = None
    llm_api_key: SecretStr | None = Field(default=None, max_length=500)
    transfer_target: TransferTarget | None = Field(
        default=None, description="Where 'let me speak to a person' goes: E.164 number or SIP URI"
    )

    @model_validator(mode="after")
    def _llm_endpoint(self) -> Self:
        if self.llm_provider == "openai-compatible" and (self.llm_base_url is None or not self.llm_model):
            raise ValueError("llm_provider 'openai-compatible' needs llm_base_url and llm_model")
        return self


class AgentCreate(AgentFields):
    pass


class AgentUpdate(Schema):
    name: Name | None = None
    instructions: str | None = Field(default=None, max_length=20_000)
    greeting: str | None = Field(default=None, max_length=2_000)
    knowledge_base: list[KnowledgeEntry] | None = Field(default=None, max_length=2_000)
    voice: str | None = Field(default=None, min_length=1, max_length=64)
    stt_provider: SttProvider | None = None
    tts_provider: TtsProvider | None = None
    llm_provider: LlmProvider | None = None
    llm_model: str | None = Field(default=None, max_length=128)
    llm_base_url: HttpUrl | None = None
    llm_api_key: SecretStr | None = Field(default=None, max_length=500)
    transfer_target: TransferTarget | None = None


class AgentOut(Timestamps):
    id: str
    space_id: str
    name: str
    instructions: str
    greeting: str
    knowledge_base: list[KnowledgeEntryOut]
    voice: str
    stt_provider: str
    tts_provider: str
    llm_provider: str
    llm_model: str | None
    llm_base_url: str | None
    transfer_target: str | None
    has_llm_api_key: bool
