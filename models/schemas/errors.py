"""The one body every non-2xx answer carries: a reason for a person, and the invalid fields when there are any."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the bad value is: `body`/`query`/`path`/`header`, then the field")
    msg: str = Field(description="Why it was refused")
    type: str = Field(description="A stable machine-readable kind, e.g. `string_too_long`, `value_error`")


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, in words")
    errors: list[FieldError] = Field(
        default_factory=list, description="Each invalid field (422 answers); empty otherwise"
    )
