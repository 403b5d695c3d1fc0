"""Phone-number validation, one rule for the API schemas, the webhooks and the workflows: E.164 written in
ASCII digits ('+', a country code, up to 15 digits in all) that is a possible number for its country."""

from __future__ import annotations

import re

import phonenumbers

E164_PATTERN = re.compile(r"\+[1-9][0-9]{1,14}")  # always fullmatch: no trailing newline, no Unicode digits


def e164_problem(value: str) -> str | None:
    """Why ``value`` is not an E.164 number, or ``None`` when it is one."""
    if not E164_PATTERN.fullmatch(value):
        return "must be an E.164 number: '+' then country code and number, up to 15 digits"
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        return f"not a phone number: {exc}"
    if not phonenumbers.is_possible_number(parsed):
        return "not a possible phone number for its country code (wrong length)"
    return None


def is_e164(value: str) -> bool:
    return e164_problem(value) is None
