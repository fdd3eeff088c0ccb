"""The registry's persistence layer: SQLModel tables, sessions, queries and migrations."""
