"""Telemetry in DuckDB: readings of the registry's sensors, their ingest, queries and exports."""
