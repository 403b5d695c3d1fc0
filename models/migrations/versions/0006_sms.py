"""sms: threads, opt-outs, and the SMS fields of messages

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('direction', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('error_code', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('carrier_message_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('segments', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('media_urls', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_carrier_message_sid'), ['carrier_message_sid'], unique=False)

    op.create_table('sms_threads',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('space_id', sa.String(length=40), nullable=False),
    sa.Column('phone_number_id', sa.String(length=40), nullable=False),
    sa.Column('our_number', sa.String(length=16), nullable=False),
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('conversation_id', sa.String(length=40), nullable=True),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_sms_threads_conversation_id_conversations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['phone_number_id'], ['phone_numbers.id'], name=op.f('fk_sms_threads_phone_number_id_phone_numbers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_sms_threads_space_id_spaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_threads')),
    sa.UniqueConstraint('phone_number_id', 'party', name=op.f('uq_sms_threads_phone_number_id'))
    )
    with op.batch_alter_table('sms_threads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_threads_space_id'), ['space_id'], unique=False)

    op.create_table('sms_opt_outs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('space_id', sa.String(length=40), nullable=False),
    sa.Column('phone_number_id', sa.String(length=40), nullable=False),
    sa.Column('party', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['phone_number_id'], ['phone_numbers.id'], name=op.f('fk_sms_opt_outs_phone_number_id_phone_numbers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_sms_opt_outs_space_id_spaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_opt_outs')),
    sa.UniqueConstraint('phone_number_id', 'party', name=op.f('uq_sms_opt_outs_phone_number_id'))
    )
    with op.batch_alter_table('sms_opt_outs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_opt_outs_space_id'), ['space_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sms_opt_outs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_opt_outs_space_id'))
    op.drop_table('sms_opt_outs')
    with op.batch_alter_table('sms_threads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_threads_space_id'))
    op.drop_table('sms_threads')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_carrier_message_sid'))
        batch_op.drop_column('media_urls')
        batch_op.drop_column('segments')
        batch_op.drop_column('carrier_message_sid')
        batch_op.drop_column('error_code')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('direction')
