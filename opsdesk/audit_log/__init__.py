"""The audit log: every change to every record, filtered and exported, and a customer as of
a past date."""
