"""Handlers for ``AvailablePhoneNumbers`` and ``IncomingPhoneNumbers``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from tests.twilio_standin.resources import (
    ACCOUNT_SID,
    E164,
    FORM,
    NUMBER_TYPES,
    IncomingNumber,
    TwilioFault,
    contains_pattern,
    new_sid,
    not_found,
)

if TYPE_CHECKING:
    from tests.twilio_standin.server import TwilioStandIn


def form_of(request: web.Request) -> dict[str, str]:
    """The request's form parameters (first value of each), parsed by the middleware."""
    return request[FORM]


def account_of(request: web.Request) -> str:
    """The authenticated account (the middleware checked it is the one in the path)."""
    return request[ACCOUNT_SID]


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TwilioFault(400, 20001, f"Invalid {name}: {raw}") from None
    if not low <= value <= high:
        raise TwilioFault(400, 20001, f"{name} must be between {low} and {high}")
    return value


def page_body(request: web.Request, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A page of a list resource with Twilio's paging keys (``next_page_uri`` null on the last page)."""
    size = _int_param(request, "PageSize", 50, 1, 1000)
    page = _int_param(request, "Page", 0, 0, 1_000_000)
    start = page * size
    chunk = items[start : start + size]
    kept = [(k, v) for k, v in request.query.items() if k not in ("PageSize", "Page", "PageToken")]

    def uri(number: int) -> str:
        return f"{request.path}?{urlencode([*kept, ('PageSize', str(size)), ('Page', str(number))])}"

    return {
        key: chunk,
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if start + size < len(items) else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": request.path_qs,
    }


def _flag(value: str) -> bool:
    return value.strip().lower() == "true"


async def search_available(st: TwilioStandIn, request: web.Request) -> web.Response:
    country = request.match_info["country"].upper()
    number_type = request.match_info["number_type"]
    if number_type not in NUMBER_TYPES or len(country) != 2:
        raise not_found(request.path)
    q = request.query
    found = [n for n in st.available.values() if n.iso_country == country and n.number_type == number_type]
    if area := q.get("AreaCode"):
        found = [n for n in found if n.area_code == area]
    if (contains := q.get("Contains")) is not None:
        pattern = contains_pattern(contains)
        if pattern is None:
            raise TwilioFault(400, 21402, f"Invalid Contains pattern: {contains}")
        found = [n for n in found if pattern.search(n.phone_number.lstrip("+"))]
    for param, attr in (("VoiceEnabled", "voice"), ("SmsEnabled", "sms"), ("MmsEnabled", "mms")):
        if param in q:
            found = [n for n in found if getattr(n, attr) == _flag(q[param])]
    for param, attr in (("InRegion", "region"), ("InLocality", "locality"), ("InPostalCode", "postal_code")):
        if param in q:
            found = [n for n in found if (getattr(n, attr) or "").lower() == q[param].lower()]
    size = _int_param(request, "PageSize", 50, 1, 1000)
    return web.json_response({"available_phone_numbers": [n.to_json() for n in found[:size]], "uri": request.path_qs})


async def buy_number(st: TwilioStandIn, request: web.Request) -> web.Response:
    account_sid = account_of(request)
    form = form_of(request)
    phone, area = form.get("PhoneNumber"), form.get("AreaCode")
    if phone:
        if not E164.match(phone):
            raise TwilioFault(400, 21421, f"PhoneNumber {phone} is invalid.")
        candidate = st.available.get(phone)
        if candidate is None:
            raise TwilioFault(400, 21422, f"PhoneNumber {phone} is not available.")
    elif area:
        matching = [
            n
            for n in st.available.values()
            if n.iso_country == "US" and n.number_type == "Local" and n.area_code == area
        ]
        if not matching:
            raise TwilioFault(400, 21452, f"No phone numbers found in area code {area}.")
        candidate = matching[0]
    else:
        raise TwilioFault(400, 21421, "A PhoneNumber or AreaCode is required.")
    del st.available[candidate.phone_number]
    number = IncomingNumber(
        sid=new_sid("PN"),
        account_sid=account_sid,
        phone_number=candidate.phone_number,
        friendly_name=candidate.friendly_name or candidate.to_json()["friendly_name"],
        capabilities={"voice": candidate.voice, "sms": candidate.sms, "mms": candidate.mms, "fax": False},
        iso_country=candidate.iso_country,
        region=candidate.region,
        locality=candidate.locality,
        postal_code=candidate.postal_code,
    )
    number.apply(form)
    st.incoming[number.sid] = number
    return web.json_response(number.to_json(), status=201)


def _owned(st: TwilioStandIn, request: web.Request) -> IncomingNumber:
    number = st.incoming.get(request.match_info["sid"])
    if number is None or number.account_sid != account_of(request):
        raise not_found(request.path)
    return number


async def list_incoming(st: TwilioStandIn, request: web.Request) -> web.Response:
    account_sid = account_of(request)
    numbers = [n for n in st.incoming.values() if n.account_sid == account_sid]
    if wanted := request.query.get("PhoneNumber"):
        digits = "".join(c for c in wanted if c.isdigit())
        numbers = [n for n in numbers if digits in n.phone_number]
    if (name := request.query.get("FriendlyName")) is not None:
        numbers = [n for n in numbers if n.friendly_name == name]
    return web.json_response(page_body(request, "incoming_phone_numbers", [n.to_json() for n in numbers]))


async def get_incoming(st: TwilioStandIn, request: web.Request) -> web.Response:
    return web.json_response(_owned(st, request).to_json())


async def update_incoming(st: TwilioStandIn, request: web.Request) -> web.Response:
    number = _owned(st, request)
    number.apply(form_of(request))
    return web.json_response(number.to_json())


async def release_incoming(st: TwilioStandIn, request: web.Request) -> web.Response:
    number = _owned(st, request)
    del st.incoming[number.sid]
    st.released.append(number)
    return web.Response(status=204)
