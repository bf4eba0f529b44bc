"""The Label Studio ML backend: each project's link to the data set of its tasks' images, and which
image shows which task.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "label_studio_projects",
        sa.Column("project_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("label_config", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "label_studio_tasks",
        sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("task_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("label_studio_tasks")
    op.drop_table("label_studio_projects")
