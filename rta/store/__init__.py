"""The store: the clickhouse-connect client (chdb:// or http://), its schema, and batched writes."""
