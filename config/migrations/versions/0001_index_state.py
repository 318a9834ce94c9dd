"""index state: documents and their chunks

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indexed_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_key", sa.String(1024), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source_key", "path", name="uq_document_source_path"),
    )
    op.create_table(
        "indexed_chunks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("indexed_documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ordinal", sa.Integer(), nullable=False),
    )
    op.create_index("ix_indexed_chunks_document_id", "indexed_chunks", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_indexed_chunks_document_id", "indexed_chunks")
    op.drop_table("indexed_chunks")
    op.drop_table("indexed_documents")
