"""questions wait out Slack's rate limits (not_before, the answer waiting to be delivered) and
record the doc sets they searched

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pending_answer", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("doc_sets", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_column("doc_sets")
        batch.drop_column("pending_answer")
        batch.drop_column("not_before")
