"""Signing in through the real login page, and where screenshots go."""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def sign_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    # The page the form posts to has loaded (the admin index, or the form again with an
    # error): waiting for network idle on top cost half a second a sign-in.
    with page.expect_navigation():
        page.click("button[type=submit]")
