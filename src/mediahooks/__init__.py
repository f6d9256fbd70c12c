"""mediahooks: a self-hosted media service for live streams with signed, ordered, retried
media webhooks."""

__version__ = "0.1.0"
