"""Sending (private): reports built from stored days, the outbox of reports, the upload, and the detached sender.

The network itself is only touched by :mod:`consentry.transport`.
"""
