"""background jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('community_key', sa.String(length=128), nullable=True),
        sa.Column('requested_by_id', sa.Integer(), nullable=True),
        sa.Column('requested_by', sa.String(length=320), nullable=True),
        sa.Column('arguments', sa.JSON(), nullable=True),
        sa.Column('progress', sa.Integer(), nullable=False),
        sa.Column('progress_message', sa.String(length=500), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('problem', sa.JSON(), nullable=True),
        sa.Column('log', sa.JSON(), nullable=False),
        sa.Column('result_file', sa.String(length=500), nullable=True),
        sa.Column('result_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('claimed_by', sa.String(length=300), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_status_kind', 'job', ['status', 'kind'])
    op.create_index('ix_job_community_key', 'job', ['community_key'])
    op.create_index('ix_job_requested_by_id', 'job', ['requested_by_id'])


def downgrade() -> None:
    op.drop_index('ix_job_requested_by_id', table_name='job')
    op.drop_index('ix_job_community_key', table_name='job')
    op.drop_index('ix_job_status_kind', table_name='job')
    op.drop_table('job')
