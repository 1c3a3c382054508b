"""The store: the one place that knows SQL (SQLAlchemy Core tables, migrations, bulk paths)."""
