"""threshold rules and the events they fired

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'threshold_rule',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('sensor_id', sa.String(length=256), nullable=True),
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('operator', sa.String(length=16), nullable=True),
        sa.Column('threshold', sa.Float(), nullable=True),
        sa.Column('threshold_high', sa.Float(), nullable=True),
        sa.Column('for_seconds', sa.Integer(), nullable=False),
        sa.Column('silence_seconds', sa.Integer(), nullable=True),
        sa.Column('cooldown_seconds', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('actions', sa.JSON(), nullable=False),
        sa.Column('created_at', UTC(), nullable=False),
        sa.Column('updated_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['community.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_threshold_rule_community_id', 'threshold_rule', ['community_id'])
    op.create_table(
        'rule_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('sensor_id', sa.String(length=256), nullable=False),
        sa.Column('channel', sa.String(length=64), nullable=False),
        sa.Column('reading_ts', UTC(), nullable=False),
        sa.Column('value', sa.Float(), nullable=True),
        sa.Column('fired_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['rule_id'], ['threshold_rule.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['community_id'], ['community.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rule_event_rule_id', 'rule_event', ['rule_id'])
    op.create_index('ix_rule_event_rule_sensor', 'rule_event', ['rule_id', 'sensor_id'])


def downgrade() -> None:
    op.drop_table('rule_event')
    op.drop_table('threshold_rule')
