"""Account migration: moving a customer's contacts, entitlements and open tickets to
another customer, previewed, all or nothing."""
