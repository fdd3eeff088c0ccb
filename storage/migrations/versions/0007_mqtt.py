"""mqtt: broker hashes of ingest keys, refused MQTT messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table('sensoringestkey') as batch:
        batch.add_column(sa.Column('broker_hash', sa.String(length=200), nullable=True))
    op.create_table(
        'mqttrefusal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sensor_id', sa.String(length=256), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=True),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('detail', sa.String(length=500), nullable=False),
        sa.Column('errors', sa.JSON(), nullable=False),
        sa.Column('received_at', UTC(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['community.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_mqttrefusal_sensor_id', 'mqttrefusal', ['sensor_id'])


def downgrade() -> None:
    op.drop_index('ix_mqttrefusal_sensor_id', table_name='mqttrefusal')
    op.drop_table('mqttrefusal')
    with op.batch_alter_table('sensoringestkey') as batch:
        batch.drop_column('broker_hash')
