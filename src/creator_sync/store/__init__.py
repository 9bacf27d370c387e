"""The state store's bottom floor: the schema's migrations (Alembic) and how a database reaches them."""
