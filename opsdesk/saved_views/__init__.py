"""Saved views: a person's named filters of the triage queue and the exceptions inbox,
personal or shared, each in the sidebar with a bounded live count
(docs/product.md#saved-views)."""
