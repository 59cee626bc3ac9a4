"""The application layer: what the window and the CLI share, without Qt.

- :mod:`shotsketch.app.shot` — :class:`OpenShot`, the open shot as one observable model
  (prompt, negative prompt, sketch, settings, current variant) with per-field change events.
- :mod:`shotsketch.app.observable` — the tiny event helper the models use (weak references,
  explicit disconnect).
- :mod:`shotsketch.app.autosave` — saves the open shot a moment after each change.
- :mod:`shotsketch.app.requests` — the one way a shot becomes a ``GenerationRequest``.
- :mod:`shotsketch.app.jobs` — the generation queue kept in the library (claims, seeds, variants).
- :mod:`shotsketch.app.takes` — frames to clip + recipe + thumbnail + library row.
- :mod:`shotsketch.app.exports` — takes to exported clips (the CLI's and the window's), recorded in
  the library with the editor timeline they were put on; re-exports.
- :mod:`shotsketch.app.session` — :class:`AppSession`: one window's library, open shot, autosave
  and queue together.

Import rule (pyproject's import-linter contracts): ``app`` imports ``core``, ``engine`` and
``media``, never PySide6, ``shotsketch.ui`` or ``shotsketch.cli``.
"""
