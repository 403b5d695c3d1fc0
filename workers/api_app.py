"""The API app as each ``telephony api`` process builds it (uvicorn imports this factory in every worker
process), from the environment the command set up."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api.app import create_app
from models.settings import Settings
from workers.logs import configure_logging


def create_api_app() -> FastAPI:
    settings = Settings()
    if not logging.getLogger().handlers:  # a spawned worker process: configure it as `telephony` configured itself
        configure_logging(settings.log_format)
    return create_app(settings)
