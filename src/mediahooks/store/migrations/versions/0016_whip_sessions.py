"""WHIP sessions any API process can end.

- `broadcasts.whip_resource`: the WHIP session resource (the last part of its `Location`) of a
  broadcast published over WHIP, so that a DELETE reaching another process finds it.
- `broadcasts.stop_requested_at`: when a process other than the one receiving the broadcast
  was asked to end it; the receiving one sees it when it next reads its token (every few
  seconds) and ends the broadcast.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("whip_resource", sa.String(32)))
        batch.add_column(sa.Column("stop_requested_at", sa.BigInteger))
    op.create_index("ix_broadcasts_whip_resource", "broadcasts", ["whip_resource"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_broadcasts_whip_resource", table_name="broadcasts")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("stop_requested_at")
        batch.drop_column("whip_resource")
