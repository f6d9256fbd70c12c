"""The use cases: what a person or a program can ask of the service (create a webhook, request a
clip, send a delivery again), each in its transaction, raising `mediahooks.errors` kinds.

The doors (`api/`, `dashboard/`) read a request, call an action, and translate its answer and
its errors; an action knows nothing of HTTP (no FastAPI, no Starlette: `tests/test_layers.py`).
"""
