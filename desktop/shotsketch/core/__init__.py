"""The domain model: layouts, phrasing, lint, projects and the library. No Qt, no torch.

Modules (import them directly; this package re-exports nothing, so importing one stays cheap):

- ``layout``: Box, Keyframe, Easing, Subject, Group, Band, Layout, LayoutError, SCHEMA_VERSION
- ``phrasing``: describe(layout), draft_layout(prompt), merge_draft, clause_beyond_prompt, find_subject_spans
- ``spatial``: read_prompt(prompt): the spatial language of a prompt (who, where, how they move)
- ``staging``: stage(reading): boxes where a storyboard artist would draw them
- ``lint``: lint(prompt, negative), Finding, Severity, DEFAULT_NEGATIVE, NEGATIVE_PRESETS, spatial_spans
- ``library``: Library (Project -> Shot -> Variant -> Take in SQLite), LibraryError, LibraryDamaged
- ``paths``: data_dir(), config_dir(), cache_dir(), media_dir()
- ``examples``: example_shots()
- ``atomic``: write_bytes_atomic / write_text_atomic / write_json_atomic
"""
