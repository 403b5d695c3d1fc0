"""calls per second on carrier accounts and SIP trunks

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: no limit of ours (existing accounts and trunks keep dialling as before)
    with op.batch_alter_table('carrier_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cps', sa.Double(), nullable=True))
    with op.batch_alter_table('sip_trunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cps', sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sip_trunks', schema=None) as batch_op:
        batch_op.drop_column('cps')
    with op.batch_alter_table('carrier_accounts', schema=None) as batch_op:
        batch_op.drop_column('cps')
