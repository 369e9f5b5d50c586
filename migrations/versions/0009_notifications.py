"""notifications: the outbox of chat notifications, a repository's own webhook URL and
since when it is paused

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column(
            "destination",
            sa.Enum(
                "global", "repository", name="notificationdestination", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("repository_id", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_notifications_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", "destination", name="uq_notifications_key_destination"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_due", ["sent_at", "gave_up_at", "due_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notifications_repository_id"), ["repository_id"], unique=False
        )

    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("notify_webhook_url", sa.String(length=2048), nullable=True))
    # Queues paused before this revision: their pause is counted from now.
    op.execute(sa.text("UPDATE repositories SET paused_at = CURRENT_TIMESTAMP WHERE paused"))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_column("notify_webhook_url")
        batch_op.drop_column("paused_at")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_repository_id"))
        batch_op.drop_index("ix_notifications_due")
    op.drop_table("notifications")
