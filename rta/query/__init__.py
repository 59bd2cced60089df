"""Queries: metric and ad-hoc queries over the store, the SQL console, and the REST query API."""
