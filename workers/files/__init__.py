"""The file service (issue 17): signed URLs verified as sql/760_files.sql signs them, and the
HTTP app that serves and receives their objects (`secinf serve`; docs/files.md)."""
