"""Steps a person takes in the dashboard, shared by the browser tests."""


def sign_in(page, live_server, membership) -> None:
    """Sign in with the login form, as `membership`'s user, and land on the segments page."""
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", membership.user.username)
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/segments/")
