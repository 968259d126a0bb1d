"""Staff notifications: notices of kit.notify stored per person, emailed as each person
chose, and posted to the teams' chat webhooks (docs/product.md#staff-notifications)."""
