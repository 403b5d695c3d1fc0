"""Durable workflows: calls, SMS threads, campaigns, pacers, provisioning, transcription, retention.

Temporal's sandbox loads each workflow's module, and this package, afresh for every workflow run. The payload
converter resolves a dataclass's annotations through the sandbox's ``sys.modules``, which only holds the modules
imported *by full name* inside the sandbox (a module reached as ``from models import calls`` is missing there, and
decoding its dataclasses fails with a NameError). So every module of ``models`` holding dataclasses that cross a
workflow boundary is imported here by full name, passed through from the worker (not re-run per workflow).
``tests/workflows/test_sandbox_imports.py`` checks the list and that nothing else of ours is re-run."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import models.assets
    import models.call_contract
    import models.calls
    import models.campaign_contacts
    import models.campaigns
    import models.carrier_calls
    import models.consent
    import models.credentials
    import models.dial_pacing
    import models.flow_calls
    import models.payloads
    import models.providers
    import models.recordings
    import models.sms
    import models.sms_pacing
    import models.stream_hold
    import models.workflow_io  # noqa: F401
