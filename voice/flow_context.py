"""What a flow gathered, handed to the agent it passes the call to: ``{name}`` placeholders in the agent's
greeting and instructions are filled in, and the variables are listed for the LLM."""

from __future__ import annotations

import dataclasses

from models.flows import fill
from voice.agent_config import AgentConfig


def with_flow_variables(config: AgentConfig, variables: dict[str, str]) -> AgentConfig:
    if not variables:
        return config
    listed = "; ".join(f"{name} = {value}" for name, value in sorted(variables.items()))
    instructions = fill(config.instructions, variables).strip()
    context = f"The caller came through the phone menu, which noted: {listed}."
    return dataclasses.replace(
        config,
        greeting=fill(config.greeting, variables),
        instructions=f"{instructions}\n\n{context}" if instructions else context,
    )
