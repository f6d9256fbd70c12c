"""The store: schema, versioned migrations and named queries over SQLite or PostgreSQL.

One code path for both; `db.Database` owns the engine, transactions and commit wake-ups.
"""
