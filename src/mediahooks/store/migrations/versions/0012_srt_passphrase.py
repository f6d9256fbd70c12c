"""SRT: a publish token's passphrase (`srtPassphrase`), with which its SRT callers encrypt.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publish_tokens") as batch:
        batch.add_column(sa.Column("srt_passphrase", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("publish_tokens") as batch:
        batch.drop_column("srt_passphrase")
