"""Thumbnails and hooks with a body other than JSON.

- `events.headers`: the request headers an event is sent with beside the signatures (its
  `Content-Type` first); NULL is a JSON hook. A `thumbnail` hook's body is the JPEG itself.
- `broadcasts.thumbnail_at`: when the broadcast's last thumbnail was taken; the process that
  moves it forward takes the next one, so several processes never send the same picture twice.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("headers", sa.Text))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("thumbnail_at", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("thumbnail_at")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("headers")
