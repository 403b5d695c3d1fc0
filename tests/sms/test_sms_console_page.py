"""The console's SMS panel in a real browser (Debian's Chromium, headless, driven by Playwright) against the API on
a loopback port, the real dev server and the Twilio stand-in: the space's threads, a thread's messages with their
delivery status as it changes, a message sent from the page through the REST API and handed to the carrier, and
the refusals (an opted-out recipient, a viewer's key) shown with the API's reason."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from models.enums import Role
from tests.sms.conftest import SmsLine, new_line, party
from tests.support.stack import eventually, running_stack, serve_http
from tests.twilio_standin import TwilioStandIn

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed")
Served = tuple[SmsLine, SmsLine, str]  # a line, another space's line, the API's base URL
HOURS = "We open at nine and close at five. Closed on Sundays."


@pytest.fixture
async def served(
    temporal_env: WorkflowEnvironment, twilio_standin: TwilioStandIn, tmp_path: Path
) -> AsyncIterator[Served]:
    async with running_stack(temporal_env, tmp_path, twilio_api_base_url=twilio_standin.url) as platform:
        assert platform.app is not None
        twilio_standin.webhook_transport = httpx.ASGITransport(app=platform.app)
        line = await new_line(platform, twilio_standin)
        other = await new_line(platform, twilio_standin)
        async with serve_http(platform.app) as base_url:
            yield line, other, base_url


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _signed_in(browser: Any, base_url: str, key: str) -> Any:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base_url}/console")
    await page.fill("#api-key", key)
    await page.click("#sign-in-form button")
    return page


async def _carrier(line: SmsLine, to: str, count: int) -> list[str]:
    async def probe() -> list[str] | None:
        bodies = [x.body for x in line.carrier_messages(to)]
        return bodies if len(bodies) >= count else None

    return await eventually(probe, within=30.0)


async def test_threads_messages_and_sending_from_the_console(browser: Any, served: Served) -> None:
    line, other, base_url = served
    caller = party()
    await line.text_in(caller, "What are your opening hours?")
    assert await _carrier(line, caller, 1) == [HOURS]
    await other.text_in(party(), "a message for the other space")

    page = await _signed_in(browser, base_url, line.space.keys[Role.OPERATOR])
    thread_id = line.thread_id(caller)
    await page.wait_for_selector(f"#sms-threads li[data-thread-id='{thread_id}']")
    assert await page.locator("#sms-threads li").count() == 1  # the other space's thread is not listed
    assert caller in await page.inner_text(f"#sms-threads li[data-thread-id='{thread_id}']")
    assert await page.locator("#sms-from option").all_inner_texts() == [line.number]

    # A thread's messages, with the delivery status changing under the page's eyes.
    await page.click(f"#sms-threads li[data-thread-id='{thread_id}']")
    await page.wait_for_selector("#sms-messages li.outbound")
    inbound = page.locator("#sms-messages li.inbound")
    assert "What are your opening hours?" in await inbound.inner_text()
    assert "caller · received" in await inbound.locator(".status").inner_text()
    outbound = page.locator("#sms-messages li.outbound")
    assert HOURS in await outbound.inner_text()
    assert "open" in await page.inner_text("#sms-thread-info")
    reply_sid = line.carrier_messages(caller)[0].sid
    assert (await line.standin.send_message_status(reply_sid, "delivered")).status_code == 204
    await page.wait_for_selector("#sms-messages li.outbound .status:has-text('agent · delivered')", timeout=15_000)

    # Send from the page: through the REST API to the thread, then to the carrier.
    callee = party()
    await page.select_option("#sms-from", line.number)
    await page.fill("#sms-to", callee)
    await page.fill("#sms-body", "Your table is ready 🍽")
    await page.click("#sms-send")
    await page.wait_for_selector("#sms-answer:has-text('sent: 202')")
    assert "UCS-2" in await page.inner_text("#sms-answer")
    assert await _carrier(line, callee, 1) == ["Your table is ready 🍽"]
    new_thread = line.thread_id(callee)
    await page.wait_for_selector(f"#sms-threads li.selected[data-thread-id='{new_thread}']")
    await page.wait_for_selector("#sms-messages li.outbound:has-text('Your table is ready')")
    failed = line.carrier_messages(callee)[0].sid
    assert (await line.standin.send_message_status(failed, "undelivered", error_code=30003)).status_code == 204
    await page.wait_for_selector("#sms-messages li.outbound.failed .status:has-text('error 30003')", timeout=15_000)
    await page.wait_for_selector("#sms-thread-info:has-text('1 failed')", timeout=15_000)

    # The recipient opted out: the page shows the API's 409 and its reason, and nothing reaches the carrier.
    await line.text_in(caller, "STOP")
    await _carrier(line, caller, 2)
    await page.fill("#sms-to", caller)
    await page.fill("#sms-body", "Are you still there?")
    await page.click("#sms-send")
    await page.wait_for_selector("#sms-answer:has-text('send: 409')")
    assert "opted out" in await page.inner_text("#sms-answer")
    assert len(line.carrier_messages(caller)) == 2
    answers = await page.evaluate("window.consoleSms.answers.map(a => a.status)")
    assert answers == [202, 409]


async def test_a_viewer_sees_threads_but_cannot_send(browser: Any, served: Served) -> None:
    line, _, base_url = served
    caller = party()
    await line.text_in(caller, "What are your opening hours?")
    await _carrier(line, caller, 1)
    page = await _signed_in(browser, base_url, line.space.keys[Role.VIEWER])
    await page.click(f"#sms-threads li[data-thread-id='{line.thread_id(caller)}']")
    await page.wait_for_selector("#sms-messages li.outbound")
    await page.fill("#sms-to", party())
    await page.fill("#sms-body", "hello")
    await page.click("#sms-send")
    await page.wait_for_selector("#sms-answer:has-text('send: 403')")
    answer = await page.inner_text("#sms-answer")
    assert "operator" in answer and "viewer" in answer, answer
    assert len([x for x in line.standin.messages.values() if x.from_ == line.number]) == 1  # only the reply
