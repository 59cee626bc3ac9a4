"""The domain model: layouts, phrasing, lint, projects and the library. No Qt, no torch.

Modules (import them directly; this package re-exports nothing, so importing one stays cheap):

- ``layout``: Box, Keyframe, Easing, Subject, Layout, LayoutError, SCHEMA_VERSION
- ``phrasing``: describe(layout), draft_layout(prompt), find_subject_spans(prompt, name)
- ``lint``: lint(prompt, negative), Finding, Severity, DEFAULT_NEGATIVE, NEGATIVE_PRESETS, spatial_spans
- ``library``: Library (Project -> Shot -> Variant -> Take in SQLite), LibraryError, LibraryDamaged
- ``paths``: data_dir(), config_dir(), cache_dir(), media_dir()
- ``examples``: example_shots()
- ``atomic``: write_bytes_atomic / write_text_atomic / write_json_atomic
"""
