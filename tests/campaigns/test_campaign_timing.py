"""Campaigns on the time-skipping server (real workflows and activities, LiveKit-carried calls against the
stand-in): calling windows in several zones, retries with backoff per result, final outcomes, do-not-call."""

from __future__ import annotations

import itertools
from datetime import timedelta

from models.campaigns import CallingWindow, CampaignLimits
from models.enums import AttemptResult, CampaignStatus, ContactOutcome, ContactStatus
from models.tables import DoNotCall
from tests.campaigns.conftest import SkippingCampaigns, calls_to, contact, contact_rows, number_in, start_campaign
from tests.conftest import unique_e164
from workflows import campaign_schedule as rules

SHORT_CALLS = {"max_call_duration_seconds": 60}  # an answered call ends by itself a minute later


async def test_each_contact_is_called_inside_its_own_window(skipping_campaigns: SkippingCampaigns) -> None:
    h = skipping_campaigns
    line = await h.calls.with_trunk(await h.calls.new_line(call_settings=SHORT_CALLS))
    people = {
        number_in("+1212555", 4): "America/New_York",
        number_in("+81354", 6): "Asia/Tokyo",
        number_in("+44207", 7): "Europe/London",
        number_in("+6129", 7): "Australia/Sydney",
    }
    window = CallingWindow("10:00", "12:00", [2, 3, 4])  # Tuesday to Thursday mornings only
    started = await h.env.get_current_time()
    ref = await start_campaign(
        h.calls.sessions,
        h.campaigns,
        space_id=line.space_id,
        e164s=[line.e164],
        contacts=[contact(e164) for e164 in people],  # the zone comes from each number
        limits=CampaignLimits(max_concurrent=2, calls_per_second=1, window=window),
    )
    result = await ref.result()
    assert (result.status, result.answered, result.remaining) == (CampaignStatus.COMPLETED, 4, 0)
    rows = await contact_rows(h.calls.sessions, result.campaign_id)
    for e164, zone in people.items():
        assert rows[e164].time_zone == zone and rows[e164].outcome is ContactOutcome.ANSWERED
        (call,) = await calls_to(h.calls.sessions, line.space_id, e164)
        assert rules.in_window(call.created_at, zone, window), (zone, call.created_at)
        opens = rules.next_window_open(started, zone, window)
        assert opens is not None and opens <= call.created_at < opens + timedelta(seconds=30), zone


async def test_retries_backoff_and_final_outcomes(skipping_campaigns: SkippingCampaigns) -> None:
    h = skipping_campaigns
    line = await h.calls.with_trunk(await h.calls.new_line(call_settings=SHORT_CALLS))
    busy, silent, broken, happy, blocked = (unique_e164() for _ in range(5))
    h.calls.livekit.dial_outcomes.update({busy: "busy", silent: "no_answer", broken: 404})
    async with h.calls.sessions() as session:
        session.add(DoNotCall(space_id=line.space_id, e164=blocked, reason="asked not to be called"))
        await session.commit()
    limits = CampaignLimits(
        max_concurrent=3,
        calls_per_second=2,
        max_attempts=3,
        backoff_seconds={"busy": 600, "no-answer": 1800},
        backoff_multiplier=2,
    )
    ref = await start_campaign(
        h.calls.sessions,
        h.campaigns,
        space_id=line.space_id,
        e164s=[line.e164],
        contacts=[contact(n, name=f"n{i}") for i, n in enumerate([busy, silent, broken, happy, blocked])],
        limits=limits,
    )
    result = await ref.result()
    assert result.status is CampaignStatus.COMPLETED
    assert (result.answered, result.busy, result.no_answer, result.failed, result.opted_out) == (1, 1, 1, 1, 0 + 1)
    assert result.placed == 3 + 3 + 1 + 1 + 1  # the blocked contact's dial was stopped by the check before it
    rows = await contact_rows(h.calls.sessions, result.campaign_id)
    expected = {
        busy: (ContactOutcome.BUSY, 3, AttemptResult.BUSY),
        silent: (ContactOutcome.NO_ANSWER, 3, AttemptResult.NO_ANSWER),
        broken: (ContactOutcome.FAILED, 1, AttemptResult.FAILED),
        happy: (ContactOutcome.ANSWERED, 1, AttemptResult.ANSWERED),
    }
    for e164, (outcome, attempts, last) in expected.items():
        row = rows[e164]
        assert (row.outcome, row.attempts, row.last_result, row.status) == (outcome, attempts, last, ContactStatus.DONE)
    assert rows[blocked].outcome is ContactOutcome.OPTED_OUT
    assert await calls_to(h.calls.sessions, line.space_id, blocked) == []
    # busy: 600 s then 1200 s between dials; no-answer: 1800 s then 3600 s
    for e164, gaps in ((busy, (600, 1200)), (silent, (1800, 3600))):
        calls = await calls_to(h.calls.sessions, line.space_id, e164)
        assert len(calls) == 3
        waited = [(b.created_at - a.created_at).total_seconds() for a, b in itertools.pairwise(calls)]
        assert all(gap <= w < gap + 60 for w, gap in zip(waited, gaps, strict=True)), waited
    assert len(await calls_to(h.calls.sessions, line.space_id, broken)) == 1


async def test_contacts_whose_window_never_opens_before_the_end_are_outside_window(
    skipping_campaigns: SkippingCampaigns,
) -> None:
    h = skipping_campaigns
    line = await h.calls.with_trunk(await h.calls.new_line(call_settings=SHORT_CALLS))
    now = await h.env.get_current_time()
    tokyo, new_york = number_in("+81354", 6), number_in("+1212555", 4)
    # The hour New York is in now, every day: open for New York, and 10 (or 11) hours away for Tokyo.
    hour = now.astimezone(rules.zone("America/New_York")).hour
    window = CallingWindow(f"{hour:02d}:00", f"{hour + 1:02d}:00", [1, 2, 3, 4, 5, 6, 7])
    limits = CampaignLimits(window=window, ends_at=now + timedelta(hours=2))
    ref = await start_campaign(
        h.calls.sessions,
        h.campaigns,
        space_id=line.space_id,
        e164s=[line.e164],
        contacts=[contact(tokyo), contact(new_york)],
        limits=limits,
    )
    result = await ref.result()
    assert (result.status, result.answered, result.outside_window) == (CampaignStatus.COMPLETED, 1, 1)
    rows = await contact_rows(h.calls.sessions, result.campaign_id)
    assert rows[new_york].outcome is ContactOutcome.ANSWERED
    assert rows[tokyo].outcome is ContactOutcome.OUTSIDE_WINDOW and rows[tokyo].attempts == 0
    assert await calls_to(h.calls.sessions, line.space_id, tokyo) == []
