"""Campaign contacts as they arrive (JSON or a CSV upload): one rule to check each, and a CSV reader that reports
every row it cannot use with its line number and the reason, never dropping one silently.

CSV: a header row, then one contact per row. ``phone`` (or ``phone_number``, ``number``, ``e164``) is required;
``name`` and ``time_zone`` (or ``timezone``, ``tz``) are optional; every other column becomes a variable passed
to the agent (empty cells are left out).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

from models.phone import e164_problem

MAX_CONTACTS = 100_000
MAX_VARIABLES = 50
MAX_VARIABLE_LENGTH = 500
MAX_NAME_LENGTH = 200
PHONE_COLUMNS = ("phone", "phone_number", "number", "e164")
NAME_COLUMNS = ("name",)
ZONE_COLUMNS = ("time_zone", "timezone", "tz")
UNKNOWN_ZONE = "Etc/Unknown"


@dataclass
class ContactIn:
    e164: str
    time_zone: str
    name: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    line: int | None = None


@dataclass
class RowProblem:
    line: int  # the CSV line (the header is line 1), or the position in a JSON list (1-based)
    reason: str


def known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_of_number(e164: str, default: str) -> str:
    """The number's zone from ``phonenumbers`` (the first it lists), else ``default``."""
    try:
        zones = phone_zones.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return default
    known = [z for z in zones if z != UNKNOWN_ZONE and known_zone(z)]
    return known[0] if known else default


def check_contact(
    phone: str,
    name: str | None,
    time_zone: str | None,
    variables: dict[str, str],
    *,
    line: int,
    default_zone: str,
    seen: dict[str, int],
) -> ContactIn | RowProblem:
    """A usable contact, or why not (``seen``: numbers already taken, with their line)."""
    e164 = phone.strip().replace(" ", "").replace("-", "")
    if not e164:
        return RowProblem(line, "phone is empty")
    if (problem := e164_problem(e164)) is not None:
        return RowProblem(line, f"phone: {problem}")
    if e164 in seen:
        return RowProblem(line, f"duplicate of line {seen[e164]}: the number is called once")
    name = (name or "").strip() or None
    if name is not None and len(name) > MAX_NAME_LENGTH:
        return RowProblem(line, f"name is longer than {MAX_NAME_LENGTH} characters")
    zone = (time_zone or "").strip() or None
    if zone is not None and not known_zone(zone):
        return RowProblem(line, f"unknown time zone {zone!r}")
    if len(variables) > MAX_VARIABLES:
        return RowProblem(line, f"more than {MAX_VARIABLES} variables")
    for key, value in variables.items():
        if not key or len(value) > MAX_VARIABLE_LENGTH:
            return RowProblem(line, f"variable {key!r}: empty name or value over {MAX_VARIABLE_LENGTH} characters")
    seen[e164] = line
    return ContactIn(e164, zone or zone_of_number(e164, default_zone), name, dict(variables), line)


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for index, title in enumerate(header):
        if title in names:
            return index
    return None


def parse_csv(text: str, default_zone: str = "UTC") -> tuple[list[ContactIn], list[RowProblem]]:
    """Every usable contact, and every row that is not, by line number."""
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [title.strip().lower().lstrip("\ufeff") for title in next(rows)]
    except StopIteration:
        return [], [RowProblem(1, "the file is empty: a header row (phone, name, …) is needed")]
    except csv.Error as exc:
        return [], [RowProblem(1, f"not CSV: {exc}")]
    phone_at = _column(header, PHONE_COLUMNS)
    if phone_at is None:
        return [], [RowProblem(1, f"no phone column: the header needs one of {', '.join(PHONE_COLUMNS)}")]
    name_at, zone_at = _column(header, NAME_COLUMNS), _column(header, ZONE_COLUMNS)
    if len(set(header)) != len(header):
        return [], [RowProblem(1, "the header names a column twice")]
    contacts: list[ContactIn] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    while True:
        line = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(line, f"not CSV: {exc}"))
            break
        # (a quoted cell may span lines: the row is named by the line it starts on)
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not contacts
        if len(row) != len(header):
            problems.append(RowProblem(line, f"{len(row)} cells, the header has {len(header)}"))
            continue
        if len(contacts) >= MAX_CONTACTS:
            problems.append(RowProblem(line, f"more than {MAX_CONTACTS} contacts in one list"))
            continue
        variables = {
            header[i]: cell.strip()
            for i, cell in enumerate(row)
            if i not in (phone_at, name_at, zone_at) and cell.strip()
        }
        checked = check_contact(
            row[phone_at],
            row[name_at] if name_at is not None else None,
            row[zone_at] if zone_at is not None else None,
            variables,
            line=line,
            default_zone=default_zone,
            seen=seen,
        )
        (contacts if isinstance(checked, ContactIn) else problems).append(checked)  # type: ignore[arg-type]
    return contacts, problems
