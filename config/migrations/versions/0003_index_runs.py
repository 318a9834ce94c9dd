"""index runs and the indexing lease

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("docs_seen", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("docs_added", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("docs_changed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("docs_removed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("chunks_embedded", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("chunks_deleted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("files_skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", sa.JSON(), nullable=False),
    )
    op.create_index("ix_index_runs_scheduled_for", "index_runs", ["scheduled_for"])
    op.create_index("ix_index_runs_status", "index_runs", ["status"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_index_runs_status", "index_runs")
    op.drop_index("ix_index_runs_scheduled_for", "index_runs")
    op.drop_table("index_runs")
