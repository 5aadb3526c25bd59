"""bulletin's state in its database: tables and migrations, the delivery ledger, subscribers.

database      the tables; connecting and migrating (SQLite or PostgreSQL)
ledger        editions, deliveries and suppressions: what was sent, to whom, and how
subscribers   each list's subscribers: CSV import and export, the web service's actions
migrations    Alembic revisions
"""
