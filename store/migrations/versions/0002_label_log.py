"""The label-efficient loop: a label log per uploaded data set, its version and class names, and
the data-set version each job trains on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("class_names", sa.JSON(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dataset_version", sa.Integer(), nullable=True))
    op.create_table(
        "label_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=True),
        sa.Column("old_label", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_label_log_dataset_id_image_index", "label_log", ["dataset_id", "image_index"])


def downgrade() -> None:
    op.drop_table("label_log")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dataset_version")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("class_names")
        batch.drop_column("version")
