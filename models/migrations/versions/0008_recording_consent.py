"""recording consent and hold policy of a space

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'recording_consent',
                sa.Enum('none', 'announce', 'require', name='recordingconsent', native_enum=False, length=32),
                server_default='none',
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column('recording_announcement', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('record_hold', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.drop_column('record_hold')
        batch_op.drop_column('recording_announcement')
        batch_op.drop_column('recording_consent')
