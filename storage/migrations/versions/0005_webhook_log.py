"""webhook delivery log: every attempt, endpoint state (enabled, rotated secret), leases

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table('webhookendpoint') as batch:
        batch.add_column(sa.Column('enabled', sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column('disabled_reason', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('previous_secret', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('previous_secret_expires_at', UTC(), nullable=True))
        batch.add_column(sa.Column('last_success_at', UTC(), nullable=True))
        batch.add_column(sa.Column('failing_since', UTC(), nullable=True))
    with op.batch_alter_table('webhookdelivery') as batch:
        batch.add_column(sa.Column('leased_by', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('last_attempt_at', UTC(), nullable=True))
    op.create_index('ix_webhookdelivery_status', 'webhookdelivery', ['status'])
    # 0004 called a delivery that gave up `failed`; now `failed` is retrying.
    op.execute("UPDATE webhookdelivery SET status = 'dead_letter' WHERE status = 'failed'")
    op.create_table(
        'webhookattempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('attempted_at', UTC(), nullable=False),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('latency_ms', sa.Integer(), nullable=False),
        sa.Column('response_body', sa.String(length=1024), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhookdelivery.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhookattempt_delivery_id', 'webhookattempt', ['delivery_id'])


def downgrade() -> None:
    op.drop_table('webhookattempt')
    op.drop_index('ix_webhookdelivery_status', 'webhookdelivery')
    with op.batch_alter_table('webhookdelivery') as batch:
        batch.drop_column('last_attempt_at')
        batch.drop_column('leased_by')
    with op.batch_alter_table('webhookendpoint') as batch:
        for name in ('failing_since', 'last_success_at', 'previous_secret_expires_at',
                     'previous_secret', 'disabled_reason', 'enabled'):
            batch.drop_column(name)
