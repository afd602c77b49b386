"""Admin: operating a server. The admin API behind a bearer token, its remote client, retention, backups."""

__all__: list[str] = []
