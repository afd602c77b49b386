"""Recording (private): counters and command spans in memory, flushed to the journal, merged into the local store.

:class:`~consentry._record.null.NullRecorder` is what :func:`consentry.init` returns without consent, and imports
nothing of the rest; :class:`~consentry._record.recorder.Recorder` and its background thread
(:mod:`~consentry._record.worker`) do the recording.
"""
