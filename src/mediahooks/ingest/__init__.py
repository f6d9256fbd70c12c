"""Ingest: the protocol doors (RTMP; SRT) that authenticate publishers and read their packets,
and the one live path (`live`) that turns any door's packets into a stream's timeline."""
