"""The domain model: layouts, phrasing, lint, projects and the library. No Qt, no torch."""
