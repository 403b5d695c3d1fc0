"""The dial pacer contract: every carrier account and SIP trunk with a ``cps`` (calls per second; NULL: no limit
of ours, nothing to ask) has dial pacers, so the campaigns dialling through it together never go faster than that.
A pacer is the SMS pacer's workflow (``workflows/pacer.py``) under its own name, ``DialPacerWorkflow``, on the
pacers' task queue; its state (one instant, GCRA) lives in its history: worker restarts keep the pace.

Two pacers per route, both at its ``cps``, so that the limit holds where the carrier counts it and no queue builds:

- ``admit`` (the campaigns): right before a dial the campaign learns its from-number's route and that route's
  ``cps`` (``begin_attempt`` reads them fresh: a changed limit applies to the next dial), takes a slot through the
  ``reserve_dial_slot`` activity (the ``reserve_slot`` update, batched per worker: ``activities/pacer_line``), waits
  for it with a durable timer, then starts the call. Campaigns sharing a route share its pace, first asked first
  served, and each holds no more than its own concurrency in the line. A campaign that comes to its slot later
  than the slot's ``valid_until`` (no worker ran) asks again rather than dialling late.
- ``carrier`` (the request itself): between the slot and the carrier's request lie the child call's start and
  routing, a few hundred ms that vary with load, enough to bunch dials up; so the carrier activity takes a slot of
  the route's second pacer and sleeps until it right before ``POST Calls.json`` (any outbound call of the account,
  a campaign's or not). Admission keeps arrivals at the pace, so these waits stay short."""

from __future__ import annotations

from dataclasses import dataclass

DIAL_PACER_WORKFLOW = "DialPacerWorkflow"
DIAL_PACER_PREFIX = "dial-pacer-"
DIAL_PACER_MAX_GRANTS_PER_RUN = 2000
ROUTE_CARRIER_ACCOUNT = "carrier-account"
ROUTE_SIP_TRUNK = "sip-trunk"


def dial_route(kind: str, resource_id: str) -> str:
    """What a dial goes out through: ``carrier-account:<id>`` or ``sip-trunk:<id>``."""
    return f"{kind}:{resource_id}"


STAGE_ADMIT = "admit"
STAGE_CARRIER = "carrier"
# The carrier request leaves at its slot, or asks again: a request later than this share of an interval after its
# slot (the worker's event loop stalled) could bunch up with the next one.
CARRIER_LATENESS = 0.25


@dataclass(frozen=True)
class DialPacerKey:
    """Whose dials a pacer paces: one carrier account or SIP trunk of one space, at one stage."""

    space_id: str
    route: str
    stage: str = STAGE_ADMIT

    @property
    def workflow_id(self) -> str:
        return f"{DIAL_PACER_PREFIX}{self.space_id}-{self.stage}-{self.route.replace(':', '-')}"


@dataclass
class ReserveDialSlotInput:
    space_id: str
    route: str
    calls_per_second: float
    call_id: str  # names the ticket (logs and the pacer's history), never reused: each execution asks anew
