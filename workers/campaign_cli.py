"""``telephony campaign``: start an outbound campaign from a CSV and follow it, over the REST API.

    telephony campaign start contacts.csv --agent ag_… --from +14155550123 --max-concurrency 5 --cps 1 \
        [--window 09:00-18:00] [--days 1-5] [--max-attempts 3] [--name NAME]
    telephony campaign status|pause|resume|cancel ID      (cancel --hang-up ends the calls in progress)
    telephony campaign watch ID                           (a live progress bar until the campaign is over)

``--json`` prints JSON documents instead (``watch --json``: one line per poll). The key comes from ``--key`` or
``$TELEPHONY_API_KEY``, the API from ``--api-url`` or ``$TELEPHONY_API_URL``. Exit codes: 0 done, 1 the campaign
ended cancelled (watch), 2 the API refused (the reason on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from models.console_protocol import KEY_ENV

EXIT_OK, EXIT_CANCELLED, EXIT_REFUSED = 0, 1, 2
OVER = ("completed", "cancelled")


class ApiRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the API answered {status}: {detail}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--space", help="the space (default: the key's own space)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument("--api-url", default=os.environ.get("TELEPHONY_API_URL", "http://127.0.0.1:8000"))
    common.add_argument("--key", default=os.environ.get(KEY_ENV), help=f"API key (default: ${KEY_ENV})")
    start = actions.add_parser("start", parents=[common], help="start a campaign from a CSV of contacts")
    start.add_argument("csv", type=Path, help="header row with phone (and name, time_zone, variables…)")
    start.add_argument("--agent", help="the agent that talks (default: the from-number's)")
    start.add_argument("--from", dest="from_numbers", action="append", required=True, help="a number of the space")
    start.add_argument("--max-concurrency", type=int, default=5)
    start.add_argument("--cps", type=float, default=1.0, help="calls per second")
    start.add_argument("--window", help="HH:MM-HH:MM in each contact's local time")
    start.add_argument("--days", default="1-5", help="with --window: ISO weekdays, e.g. 1-5 or 1,3,5 (Mon = 1)")
    start.add_argument("--max-attempts", type=int, default=3)
    start.add_argument("--name", help="the campaign's name (default: the CSV's file name)")
    for action in ("status", "pause", "resume", "cancel", "watch"):
        sub = actions.add_parser(action, parents=[common], help=f"{action} a campaign")
        sub.add_argument("campaign", help="the campaign id (cmp_…)")
        if action == "cancel":
            sub.add_argument("--hang-up", action="store_true", help="hang up the calls in progress")
        if action == "watch":
            sub.add_argument("--interval", type=float, default=1.0, help="seconds between polls")


def days_of(text: str) -> list[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        days.update(range(int(first), int(last or first) + 1))
    return sorted(days)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    limits: dict[str, Any] = {
        "max_concurrent": args.max_concurrency,
        "calls_per_second": args.cps,
        "max_attempts": args.max_attempts,
    }
    if args.window:
        start, _, end = args.window.partition("-")
        limits["window"] = {"start": start, "end": end, "days": days_of(args.days)}
    settings: dict[str, Any] = {"name": args.name or args.csv.stem, "from_numbers": args.from_numbers}
    settings["limits"] = limits
    if args.agent:
        settings["agent_id"] = args.agent
    return settings


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            body = response.json()
            detail = body.get("detail") or body.get("message") or body
        except ValueError:
            detail = response.text
        raise ApiRefused(response.status_code, json.dumps(detail) if not isinstance(detail, str) else detail)
    answer: dict[str, Any] = response.json()
    return answer


async def _space(client: httpx.AsyncClient, space: str | None) -> str:
    if space is not None:
        return space
    spaces = _answer(await client.get("/v1/spaces", params={"limit": 2}))["data"]
    if len(spaces) != 1:
        raise ApiRefused(400, "the key sees several spaces: name one with --space")
    return str(spaces[0]["id"])


def progress_line(detail: dict[str, Any]) -> str:
    p = detail.get("progress") or {}
    return (
        f"{detail['id']} {detail['status']}: {p.get('placed', 0)} placed, {p.get('in_progress', 0)} in progress, "
        f"{p.get('answered', 0)} answered, {p.get('voicemail', 0)} voicemail, {p.get('no_answer', 0)} no answer, "
        f"{p.get('busy', 0)} busy, {p.get('failed', 0)} failed, {p.get('opted_out', 0)} opted out, "
        f"{p.get('remaining', 0)} remaining"
    )


async def run(args: argparse.Namespace) -> int:
    if not args.key:
        print(f"telephony campaign: no API key (--key or ${KEY_ENV})", file=sys.stderr)
        return EXIT_REFUSED
    headers = {"Authorization": f"Bearer {args.key}"}
    async with httpx.AsyncClient(base_url=args.api_url, headers=headers, timeout=60) as client:
        try:
            space = await _space(client, args.space)
            return await _act(client, args, f"/v1/spaces/{space}/campaigns")
        except ApiRefused as exc:
            print(f"telephony campaign: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except (OSError, httpx.HTTPError) as exc:
            print(f"telephony campaign: cannot reach the API: {exc}", file=sys.stderr)
            return EXIT_REFUSED


async def _act(client: httpx.AsyncClient, args: argparse.Namespace, base: str) -> int:
    if args.action == "start":
        files = {"file": (args.csv.name, args.csv.read_bytes(), "text/csv")}
        data = {"settings": json.dumps(settings_of(args))}
        created = _answer(await client.post(f"{base}/upload", files=files, data=data))
        if args.json:
            print(json.dumps(created))
        else:
            print(f"campaign {created['campaign']['id']}: {created['accepted']} contacts")
            for row in created["rejected"]:
                print(f"line {row['line']}: {row['reason']}", file=sys.stderr)
        return EXIT_OK
    path = f"{base}/{args.campaign}"
    if args.action == "watch":
        return await watch(client, path, args)
    if args.action == "status":
        answer = _answer(await client.get(path))
    elif args.action == "cancel":
        answer = _answer(await client.post(f"{path}/cancel", json={"hang_up": args.hang_up}))
    else:
        answer = _answer(await client.post(f"{path}/{args.action}"))
    if args.json:
        print(json.dumps(answer))
    else:
        shown = answer if "id" in answer else {"id": args.campaign, "status": answer["status"], "progress": answer}
        print(progress_line(shown))
    return EXIT_OK


async def watch(client: httpx.AsyncClient, path: str, args: argparse.Namespace) -> int:
    """Poll the campaign until it is over: a ``rich`` progress bar, or a JSON line per poll."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    detail = _answer(await client.get(path))
    if args.json:
        while True:
            print(json.dumps(detail), flush=True)
            if detail["status"] in OVER:
                break
            await asyncio.sleep(args.interval)
            detail = _answer(await client.get(path))
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task(detail["status"], total=None)
            while True:
                p = detail.get("progress") or {}
                total = p.get("total") or None
                done = (total or 0) - p.get("remaining", 0)
                text = (
                    f"{detail['status']}: {p.get('in_progress', 0)} live, {p.get('answered', 0)} answered, "
                    f"{p.get('current_rate', 0):.1f}/s"
                )
                bar.update(task, total=total, completed=max(0, done), description=text)
                if detail["status"] in OVER:
                    break
                await asyncio.sleep(args.interval)
                detail = _answer(await client.get(path))
        print(progress_line(detail))
    return EXIT_CANCELLED if detail["status"] == "cancelled" else EXIT_OK
