"""Settings and the wiring of connections (SQL engine, migrations, Milvus client)."""
