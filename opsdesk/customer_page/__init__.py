"""The customer page: the record, then everything support needs about it (overview, usage
chart, billing tab, trace, onboarding)."""
