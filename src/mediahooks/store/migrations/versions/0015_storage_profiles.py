"""Storage profiles: an account's own buckets, which a clip request may name.

- `storage_profiles`: the platform's profile (name, default, type, bucket name, object prefix,
  region) and what a self-hosted service needs to reach a bucket that is not on AWS or not
  reachable with the service's own credentials (endpoint, access key id, secret access key).
- `media_assets.storage_profile_id`: the profile an asset's files are kept in (NULL: the
  service's own storage).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_profiles",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(6), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("bucket_name", sa.Text, nullable=False),
        sa.Column("object_prefix", sa.Text, nullable=False, server_default=""),
        sa.Column("bucket_region", sa.Text),
        sa.Column("endpoint_url", sa.Text),
        sa.Column("access_key_id", sa.Text),
        sa.Column("secret_access_key", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_storage_profiles_account", "storage_profiles", ["account_id", "name"])
    with op.batch_alter_table("media_assets") as batch:
        batch.add_column(sa.Column("storage_profile_id", sa.String(36)))


def downgrade() -> None:
    with op.batch_alter_table("media_assets") as batch:
        batch.drop_column("storage_profile_id")
    op.drop_index("ix_storage_profiles_account", "storage_profiles")
    op.drop_table("storage_profiles")
