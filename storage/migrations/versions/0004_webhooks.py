"""outgoing webhooks: endpoints, outbox, deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'webhookendpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('description', sa.String(length=500), nullable=True),
        sa.Column('event_types', sa.JSON(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('created_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['community.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhookendpoint_community_id', 'webhookendpoint', ['community_id'])
    op.create_table(
        'webhookoutbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('event_type', sa.String(length=64), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', UTC(), nullable=False),
        sa.Column('dispatched_at', UTC(), nullable=True),
        sa.ForeignKeyConstraint(['community_id'], ['community.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhookoutbox_community_id', 'webhookoutbox', ['community_id'])
    op.create_index('ix_webhookoutbox_dispatched_at', 'webhookoutbox', ['dispatched_at'])
    op.create_table(
        'webhookdelivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', UTC(), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('delivered_at', UTC(), nullable=True),
        sa.ForeignKeyConstraint(['outbox_id'], ['webhookoutbox.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhookendpoint.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('outbox_id', 'endpoint_id'),
    )
    op.create_index('ix_webhookdelivery_outbox_id', 'webhookdelivery', ['outbox_id'])
    op.create_index('ix_webhookdelivery_endpoint_id', 'webhookdelivery', ['endpoint_id'])
    op.create_index('ix_webhookdelivery_next_attempt_at', 'webhookdelivery',
                    ['next_attempt_at'])


def downgrade() -> None:
    op.drop_table('webhookdelivery')
    op.drop_table('webhookoutbox')
    op.drop_table('webhookendpoint')
