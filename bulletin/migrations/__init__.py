"""Alembic migrations of the site database; `bulletin.database.connect` applies them."""
