"""Alembic migrations of the site database; `bulletin.store.database.connect` applies them."""
