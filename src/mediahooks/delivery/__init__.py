"""Delivery: the dispatcher that claims due deliveries, signs and sends them, and records each
attempt; the SSRF guard every request passes through."""
