"""Local files (private): where they are, the local store of counts, the local bookkeeping, one application's session.

:mod:`~consentry._local.paths` is the only module that spells a file name of the client.
"""
