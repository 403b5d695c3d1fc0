from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, HttpUrl, SecretStr, model_validator

from models.providers import Kind, provider_problem
from models.schemas.common import Name, OutSchema, Schema, Timestamps, TransferTarget


def _loadable(kind: Kind) -> AfterValidator:
    """Refuse a provider the voice runtime could not load here (plugin missing, key unset), saying what to do."""

    def check(name: str) -> str:
        problem = provider_problem(kind, name)
        if problem is not None:
            raise ValueError(problem)
        return name

    return AfterValidator(check)


SttProvider = Annotated[Literal["local-whisper", "deepgram", "openai"], _loadable("stt")]
TtsProvider = Annotated[Literal["local-hibari", "local-espeak", "cartesia", "openai"], _loadable("tts")]
LlmProvider = Annotated[Literal["local-kb", "openai-compatible"], _loadable("llm")]


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
