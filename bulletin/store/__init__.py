"""bulletin's state in its database: tables and migrations, the delivery ledger, subscribers.

database      the tables; connecting and migrating (SQLite or PostgreSQL)
ledger        editions, deliveries and suppressions: what was sent, to whom, and how; the one
              writer of those tables
statuses      the statuses of deliveries, editions and subscribers, and the channels (StrEnum)
locks         the delivery and batch locks: two runs never send the same deliveries at once
subscribers   each list's subscribers: CSV import and export, the web service's actions
migrations    Alembic revisions
"""
