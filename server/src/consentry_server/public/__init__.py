"""Public: everything served from published data only, never from raw reports.

The public JSON API, open data files, badges, the dashboard and its static-site form, the transparency documents,
and funder reports.
"""

__all__: list[str] = []
