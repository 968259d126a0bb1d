"""``make bench``: webhook intake under gunicorn, side by side with a bare insert view."""

# The Celery queue the bench's webhook tasks go to: no worker consumes it, the runner
# deletes it afterwards.
QUEUE = "opsdesk-bench"
