"""Hypothesis over the Twilio form parser: any form gives a typed form whose every field is ASCII and bounded,
or a 400 naming the field; forms Twilio really sends always parse."""

from __future__ import annotations

import string

from fastapi import HTTPException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.webhooks.twilio_form import MAX_PARAMS, StatusForm, VoiceForm, status_form, voice_form

FIELDS = ["CallSid", "AccountSid", "From", "To", "Direction", "CallStatus", "SipResponseCode", "CallDuration"]
STATUSES = ["queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled"]
PROPERTIES = settings(max_examples=400, derandomize=True, database=None, suppress_health_check=list(HealthCheck))

hex32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
digits = st.text(alphabet="0123456789", min_size=1, max_size=9)
numbers = st.builds(lambda cc, rest: f"+{cc}{rest}", st.integers(1, 9), st.text("0123456789", min_size=6, max_size=13))
twilio_forms = st.fixed_dictionaries(
    {
        "CallSid": hex32.map(lambda h: "CA" + h),
        "AccountSid": hex32.map(lambda h: "AC" + h),
        "From": numbers | st.just("anonymous") | st.just("client:alice"),
        "To": numbers,
        "CallStatus": st.sampled_from(STATUSES),
    },
    optional={
        "Direction": st.sampled_from(["inbound", "outbound-api", "outbound-dial"]),
        "SipResponseCode": st.integers(100, 699).map(str),
        "CallDuration": digits,
        "ApiVersion": st.just("2010-04-01"),
    },
)
# Anything a forger can put in a form: other scripts' digits, control characters, huge values, known names.
hostile_values = (
    st.text(max_size=40)
    | st.text(alphabet=string.digits + "٠١٢٣٤٥٦٧٨٩０１２\n\r\x00+-", max_size=40)
    | (st.integers(0, 10**40).map(str))
)
hostile_forms = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), hostile_values, max_size=12)
mixed_forms = st.builds(lambda good, bad: {**good, **bad}, twilio_forms, hostile_forms)


def _ascii_bounded(form: VoiceForm | StatusForm) -> None:
    for value in form.model_dump().values():
        if isinstance(value, str):
            assert value.isascii() and value.isprintable() and len(value) <= 256
        if isinstance(value, int):
            assert 0 <= value < 10**9


@PROPERTIES
@given(form=twilio_forms)
def test_forms_twilio_sends_parse(form: dict[str, str]) -> None:
    parsed = status_form(form)
    assert parsed.call_sid == form["CallSid"] and parsed.call_status == form["CallStatus"]
    assert parsed.sip_response_code == (int(form["SipResponseCode"]) if "SipResponseCode" in form else None)
    assert voice_form(form).to_number == form["To"]
    _ascii_bounded(parsed)


@PROPERTIES
@given(form=hostile_forms | mixed_forms)
def test_any_form_is_typed_and_bounded_or_a_400_naming_the_field(form: dict[str, str]) -> None:
    for parse in (status_form, voice_form):
        try:
            parsed = parse(form)
        except HTTPException as exc:
            assert exc.status_code == 400
            field = str(exc.detail).split(":", 1)[0]
            assert field in FIELDS or field == "form", exc.detail
        else:
            _ascii_bounded(parsed)
            assert parsed.call_sid.isascii() and len(parsed.call_sid) == 34


def test_too_many_parameters_are_refused() -> None:
    form = {f"P{i}": "x" for i in range(MAX_PARAMS + 1)}
    try:
        status_form(form)
    except HTTPException as exc:
        assert exc.status_code == 400 and "parameters" in str(exc.detail)
    else:
        raise AssertionError("a form of more than MAX_PARAMS parameters was accepted")
