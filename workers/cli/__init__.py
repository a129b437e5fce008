"""The `secinf` command line."""
