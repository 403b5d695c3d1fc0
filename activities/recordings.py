"""Activities recording a call's LiveKit room with egress (audio only), into the configured storage."""

from __future__ import annotations

import logging

from livekit import api as lk
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.calls import LIVEKIT_NOT_CONFIGURED
from models.recordings import RecordingStarted, RecordingStopped, StartRecordingInput, StopRecordingInput
from models.settings import Settings
from storage.egress import egress_target

log = logging.getLogger(__name__)

RECORDING_REFUSED = "RecordingRefused"


class RecordingActivities:
    def __init__(self, livekit: lk.LiveKitAPI | None, settings: Settings) -> None:
        self._livekit = livekit
        self._settings = settings

    def _api(self) -> lk.LiveKitAPI:
        if self._livekit is None:
            raise ApplicationError("LiveKit is not configured", type=LIVEKIT_NOT_CONFIGURED, non_retryable=True)
        return self._livekit

    def _output(self, request: StartRecordingInput) -> lk.EncodedFileOutput:
        target = egress_target(self._settings, request.space_id, request.call_id)  # in the space's storage
        output = lk.EncodedFileOutput(file_type=lk.EncodedFileType.OGG, filepath=target.filepath)
        settings = self._settings
        if settings.storage_backend == "s3":
            output.s3.CopyFrom(
                lk.S3Upload(
                    access_key=settings.s3_access_key_id or "",
                    secret=settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else "",
                    region=settings.s3_region,
                    endpoint=settings.s3_endpoint_url or "",
                    bucket=settings.s3_bucket,
                    force_path_style=True,
                )
            )
        return output

    @activity.defn
    async def start_recording(self, request: StartRecordingInput) -> RecordingStarted:
        """Record the room's mixed audio; answers once LiveKit accepted the egress."""
        api = self._api()
        try:
            # A retried attempt finds the egress the first one started instead of recording twice.
            active = await api.egress.list_egress(lk.ListEgressRequest(room_name=request.room_name, active=True))
            for info in active.items:
                return RecordingStarted(egress_id=info.egress_id)
            info = await api.egress.start_room_composite_egress(
                lk.RoomCompositeEgressRequest(
                    room_name=request.room_name, audio_only=True, file_outputs=[self._output(request)]
                )
            )
        except lk.TwirpError as exc:
            if 400 <= exc.status < 500 and exc.status not in (408, 429):
                raise ApplicationError(
                    f"LiveKit refused to record: {exc.message}", type=RECORDING_REFUSED, non_retryable=True
                ) from exc
            raise
        log.info("recording started", extra={"call_id": request.call_id, "egress_id": info.egress_id})
        return RecordingStarted(egress_id=info.egress_id)

    @activity.defn
    async def stop_recording(self, request: StopRecordingInput) -> RecordingStopped:
        try:
            await self._api().egress.stop_egress(lk.StopEgressRequest(egress_id=request.egress_id))
        except lk.TwirpError as exc:
            if exc.status in (404, 412) or exc.code in ("not_found", "failed_precondition"):
                return RecordingStopped(stopped=False)
            raise
        return RecordingStopped(stopped=True)
