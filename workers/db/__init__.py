"""Database platform: the local cluster, connections, migrations and repeatable SQL."""
