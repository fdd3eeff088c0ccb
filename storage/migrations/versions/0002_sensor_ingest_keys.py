"""sensor ingest keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sensoringestkey',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('sensor_id', sa.String(length=256), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['community.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('community_id', 'sensor_id'),
    )
    op.create_index('ix_sensoringestkey_community_id', 'sensoringestkey', ['community_id'])
    op.create_index('ix_sensoringestkey_sensor_id', 'sensoringestkey', ['sensor_id'])


def downgrade() -> None:
    op.drop_index('ix_sensoringestkey_sensor_id', table_name='sensoringestkey')
    op.drop_index('ix_sensoringestkey_community_id', table_name='sensoringestkey')
    op.drop_table('sensoringestkey')
