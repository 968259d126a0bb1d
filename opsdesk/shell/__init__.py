"""The admin shell: the site's sidebar and badges, sign-in form, lockout page and session
limits."""
