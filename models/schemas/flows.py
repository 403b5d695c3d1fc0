"""API schemas of flows: the document itself is ``models.flows.FlowDocument`` (JSON or YAML on upload)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from models.flows import FlowDocument
from models.schemas.common import Timestamps

FLOW_MEDIA_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")


class FlowOut(Timestamps):
    id: str
    space_id: str
    name: str
    version: int  # the current version: calls started from now on run it
    document: FlowDocument


class FlowVersionOut(BaseModel):
    flow_id: str
    version: int
    document: FlowDocument
    created_at: datetime
