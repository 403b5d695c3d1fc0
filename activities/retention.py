"""Retention activities: find assets past their deadline, delete one (blob, then row marked deleted, with an
audit entry), and delete transcript messages past the space's transcript deadline.

The clock is the workflow's (``as_of``), so the same run gives the same answer on retry. Legal holds are checked
again at deletion time: a hold set between the search and the deletion wins. A recording on legal hold also
keeps the transcript messages of its call.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models.assets import (
    RECORDING_SOURCE,
    AssetAction,
    AssetStatus,
    DeleteAssetInput,
    DeletedAsset,
    DeletedTranscripts,
    DeleteTranscriptsInput,
    ExpiredAssets,
    FindExpiredInput,
)
from models.tables import Asset, AssetAudit, Message, RetentionPolicy, utcnow
from storage import BlobStore

log = logging.getLogger(__name__)

_LIVE = (AssetStatus.STORED, AssetStatus.FAILED, AssetStatus.RECORDING)


class RetentionActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: BlobStore) -> None:
        self._sessions = sessions
        self._store = store

    @activity.defn
    async def find_expired_assets(self, request: FindExpiredInput) -> ExpiredAssets:
        """Assets of every space past their deadline and not on legal hold, oldest deadline first."""
        async with self._sessions() as session:
            ids = await session.scalars(
                select(Asset.id)
                .where(
                    Asset.status.in_(_LIVE),
                    Asset.retention_until.is_not(None),
                    Asset.retention_until <= request.as_of,
                    Asset.legal_hold.is_(False),
                )
                .order_by(Asset.retention_until, Asset.id)
                .limit(request.batch_size)
            )
            return ExpiredAssets(asset_ids=list(ids.all()))

    @activity.defn
    async def delete_asset(self, request: DeleteAssetInput) -> DeletedAsset:
        async with self._sessions() as session:
            asset = await session.get(Asset, request.asset_id, with_for_update=True)
            if (
                asset is None
                or asset.status not in _LIVE
                or asset.legal_hold
                or asset.retention_until is None
                or asset.retention_until > request.as_of
            ):
                return DeletedAsset(asset_id=request.asset_id, deleted=False)
            await asyncio.to_thread(self._store.delete, asset.storage_key)
            asset.status = AssetStatus.DELETED
            asset.deleted_at = utcnow()
            session.add(
                AssetAudit(
                    space_id=asset.space_id,
                    asset_id=asset.id,
                    action=AssetAction.DELETED,
                    actor=request.actor,
                    detail=f"retention deadline {asset.retention_until.isoformat()}",
                )
            )
            await session.commit()
        log.info("asset deleted by retention", extra={"asset_id": request.asset_id})
        return DeletedAsset(asset_id=request.asset_id, deleted=True)

    @activity.defn
    async def delete_expired_transcripts(self, request: DeleteTranscriptsInput) -> DeletedTranscripts:
        deleted = 0
        async with self._sessions() as session:
            policies = (
                await session.scalars(select(RetentionPolicy).where(RetentionPolicy.transcript_days.is_not(None)))
            ).all()
            for policy in policies:
                assert policy.transcript_days is not None
                held_calls = select(Asset.call_id).where(
                    Asset.space_id == policy.space_id, Asset.legal_hold.is_(True), Asset.call_id.is_not(None)
                )
                result = await session.execute(
                    delete(Message).where(
                        Message.space_id == policy.space_id,
                        Message.source == RECORDING_SOURCE,
                        Message.created_at <= request.as_of - timedelta(days=policy.transcript_days),
                        or_(Message.call_id.is_(None), Message.call_id.not_in(held_calls)),
                    )
                )
                deleted += int(getattr(result, "rowcount", 0) or 0)
            await session.commit()
        if deleted:
            log.info("transcript messages deleted by retention", extra={"count": deleted})
        return DeletedTranscripts(messages_deleted=deleted)
