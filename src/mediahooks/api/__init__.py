"""The HTTP API: platform-compatible routes by resource, auth, and the response envelope."""
