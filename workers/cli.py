"""The ``telephony`` command: ``dev``, ``api``, ``media``, ``worker``, ``voice``, ``migrate``, ``create-admin-key``.

Settings come from the environment (``TELEPHONY_*``, or ``.env``); command-line flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.settings import Settings
from workers.call_cli import add_arguments as add_call_arguments
from workers.campaign_cli import add_arguments as add_campaign_arguments
from workers.logs import configure_logging
from workers.worker_role import WorkerRole

log = logging.getLogger("workers.cli")

DEFAULT_TEMPORAL_PORT = 7233
DEFAULT_UI_PORT = 8233


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return port


def _media_processes(value: str) -> int:
    count = int(value)
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"not a number of media processes (1-64): {value}")
    return count


def _settings(data_dir: str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir).expanduser().resolve()
    return Settings(**overrides)


def dev_settings(
    data_dir: str | None,
    api_port: int | None,
    temporal_port: int,
    media_port: int | None = None,
    media_processes: int | None = None,
) -> Settings:
    base = Settings()
    port = api_port if api_port is not None else base.api_port
    overrides: dict[str, Any] = {
        "data_dir": Path(data_dir if data_dir is not None else base.data_dir).expanduser().resolve(),
        "api_host": "127.0.0.1",
        "api_port": port,
        "temporal_address": f"127.0.0.1:{temporal_port}",
    }
    if "public_url" not in base.model_fields_set:  # not configured: follow the API port
        overrides["public_url"] = f"http://127.0.0.1:{port}"
    if media_port is None:
        media_port = base.media_port if "media_port" in base.model_fields_set else port + 1
    overrides["media_port"] = media_port
    if media_processes is not None:
        overrides["media_processes"] = media_processes
    if "media_public_url" not in base.model_fields_set:
        overrides["media_public_url"] = f"http://127.0.0.1:{media_port}"
    return Settings(**overrides)


def _exit_now(code: int) -> None:
    """Leave without interpreter finalisation: the Temporal SDK sometimes aborts there (code 134)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- commands ----------------------------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace) -> int:
    from workers.dev import run_dev

    settings = dev_settings(args.data_dir, args.api_port, args.temporal_port, args.media_port, args.media_processes)
    _exit_now(run_dev(settings, temporal_port=args.temporal_port, ui_port=args.ui_port))
    return 0  # not reached


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from models.db import migrate
    from workers.child_processes import follow_supervisor

    follow_supervisor()
    overrides = {"api_workers": args.workers} if args.workers else {}
    settings = _settings(args.data_dir, **overrides)
    migrate(settings.resolved_database_url)
    # No speech models here: media streams are served by `telephony media`, so webhooks stay light.
    os.environ["TELEPHONY_DATA_DIR"] = str(settings.data_dir)  # each API process builds its settings from the
    os.environ["TELEPHONY_API_WORKERS"] = str(settings.api_workers)  # environment (workers.api_app)
    uvicorn.run(
        "workers.api_app:create_api_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_level="info",
        log_config=None,  # uvicorn logs through our structured handler
        access_log=settings.api_access_log,
    )
    return 0


def cmd_media(args: argparse.Namespace) -> int:
    """Carrier media streams answered by the voice agent: one or more per machine, behind TELEPHONY_MEDIA_PUBLIC_URL."""
    from voice.media_stream.app import create_media_app
    from voice.media_stream.serve import run_media_server
    from workers.child_processes import follow_supervisor

    follow_supervisor()
    settings = _settings(args.data_dir, **({"media_port": args.port} if args.port else {}))
    # Before any thread starts (Linux applies nice per thread; new threads inherit it): when the machine's cores
    # are busy with speech, the API's webhooks and the worker's workflow tasks still get the CPU first.
    if settings.media_nice:
        os.nice(settings.media_nice)
    run_media_server(create_media_app(settings), settings)  # SIGTERM drains: calls finish or move, then exit 0
    _exit_now(0)
    return 0  # not reached


def cmd_worker(args: argparse.Namespace) -> int:
    """Workflows and activities of one role (``workers/worker.py``): ``calls``, ``speech`` or ``all``."""
    from workers.child_processes import follow_supervisor

    follow_supervisor()
    settings = _settings(args.data_dir)
    from workers.worker import run_worker  # imported late: it pulls in the call role's workflows

    role = WorkerRole(args.role)
    if role.speaks:  # the speech stack loads here, on the main thread, before the loop polls anything
        import workers.speech_worker  # noqa: F401

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await run_worker(settings, role)
        except asyncio.CancelledError:
            log.info("worker stopped")

    asyncio.run(main())
    _exit_now(0)
    return 0  # not reached


def cmd_voice(args: argparse.Namespace) -> int:
    """The livekit-agents worker answering calls dispatched into LiveKit rooms (media mode livekit).

    Carrier media streams are served by `telephony media`."""
    settings = _settings(args.data_dir)
    if not settings.livekit_configured:
        print(
            "telephony voice: LiveKit is not configured (TELEPHONY_LIVEKIT_URL, _API_KEY, _API_SECRET); "
            "media-stream calls are answered by `telephony api` without it",
            file=sys.stderr,
        )
        return 2
    from voice.livekit_worker import build_server

    asyncio.run(build_server(settings).run())
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from workers.call_cli import run_call

    _exit_now(asyncio.run(run_call(args)))
    return 0  # not reached


def cmd_campaign(args: argparse.Namespace) -> int:
    from workers.campaign_cli import run

    _exit_now(asyncio.run(run(args)))
    return 0  # not reached


def cmd_migrate(args: argparse.Namespace) -> int:
    from models.db import migrate

    settings = _settings(args.data_dir)
    migrate(settings.resolved_database_url)
    log.info("database schema is up to date")
    return 0


def cmd_create_admin_key(args: argparse.Namespace) -> int:
    from models.db import migrate
    from workers.bootstrap import create_platform_key

    settings = _settings(args.data_dir)
    migrate(settings.resolved_database_url)
    key = asyncio.run(create_platform_key(settings, args.name))
    print(key, flush=True)
    return 0


# -- parsing -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telephony",
        description="Bivariant Telephony: phone numbers, SIP trunks, calls and SMS as Temporal workflows.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir", metavar="DIR", help="data folder (default: $TELEPHONY_DATA_DIR or ./.telephony)"
    )

    dev = commands.add_parser(
        "dev",
        parents=[data_dir],
        help="run Temporal, the API and the worker on this machine (127.0.0.1 only)",
        description="Start the Temporal dev server, the API and the worker on 127.0.0.1 and supervise them. "
        "Ctrl-C stops everything.",
    )
    dev.add_argument(
        "--api-port", type=_port, default=None, metavar="PORT", help="API port (default: $TELEPHONY_API_PORT or 8000)"
    )
    dev.add_argument(
        "--media-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="media-stream server port (default: $TELEPHONY_MEDIA_PORT or the API port + 1)",
    )
    dev.add_argument(
        "--media-processes",
        type=_media_processes,
        default=None,
        metavar="N",
        help="media servers sharing the media port, e.g. one per core (default: $TELEPHONY_MEDIA_PROCESSES or 1)",
    )
    dev.add_argument(
        "--temporal-port",
        type=_port,
        default=DEFAULT_TEMPORAL_PORT,
        metavar="PORT",
        help="Temporal gRPC port (default: %(default)s)",
    )
    dev.add_argument(
        "--ui-port", type=_port, default=DEFAULT_UI_PORT, metavar="PORT", help="Temporal UI port (default: %(default)s)"
    )
    dev.set_defaults(func=cmd_dev)

    api = commands.add_parser("api", parents=[data_dir], help="run the HTTP API (migrates first)")
    api.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="API processes sharing the port (default: $TELEPHONY_API_WORKERS or 1)",
    )
    api.set_defaults(func=cmd_api)

    media = commands.add_parser(
        "media", parents=[data_dir], help="run a media-stream server (carrier media streams answered by the agent)"
    )
    media.add_argument("--port", type=_port, default=None, help="port (default: $TELEPHONY_MEDIA_PORT or 8001)")
    media.set_defaults(func=cmd_media)

    worker = commands.add_parser("worker", parents=[data_dir], help="run the Temporal worker")
    worker.add_argument(
        "--role",
        choices=[role.value for role in WorkerRole],
        default=WorkerRole.ALL.value,
        help="calls: calls, campaigns, numbers, provisioning, retention and pacers (no speech stack); "
        "speech: SMS threads and transcriptions (livekit-agents, Whisper); all: both (default: %(default)s)",
    )
    worker.set_defaults(func=cmd_worker)

    voice = commands.add_parser(
        "voice", parents=[data_dir], help="run the LiveKit voice agent worker (calls in media mode livekit)"
    )
    voice.set_defaults(func=cmd_voice)

    mig = commands.add_parser("migrate", parents=[data_dir], help="upgrade the database schema")
    mig.set_defaults(func=cmd_migrate)

    key = commands.add_parser(
        "create-admin-key", parents=[data_dir], help="create a platform (admin) API key and print it"
    )
    key.add_argument("--name", default="admin", help="the key's name (default: admin)")
    key.set_defaults(func=cmd_create_admin_key)

    call = commands.add_parser(
        "call",
        help="call an agent or number over the console socket: speak text or a WAV, print the replies",
        description="Exits 0 when the call ended normally, 1 for another end, 2 when it was refused.",
    )
    add_call_arguments(call)
    call.set_defaults(func=cmd_call)

    campaign = commands.add_parser(
        "campaign",
        help="start an outbound campaign from a CSV, see or control it, watch its progress",
        description="Exits 0 when done, 1 when a watched campaign ended cancelled, 2 when the API refused.",
    )
    add_campaign_arguments(campaign)
    campaign.set_defaults(func=cmd_campaign)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "dev":  # one machine, a person reading: readable lines, for the children too
        os.environ.setdefault("TELEPHONY_LOG_FORMAT", "console")
    configure_logging(Settings().log_format, logging.DEBUG if args.verbose else logging.INFO)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
