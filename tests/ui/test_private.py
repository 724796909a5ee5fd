"""A ``--private`` registry in the browser: nothing without signing in, nothing of another
team's with its token, and the API never takes the pages' cookie."""

from __future__ import annotations

from typing import Any

from ui_site import PrivateSite, Shots, sign_in


def test_nothing_is_shown_without_signing_in(
    private_site: PrivateSite, page: Any, snap: Shots
) -> None:
    for path in ("/", f"/modules/{private_site.alpha}/secret-prep", f"/runs/{private_site.run_id}"):
        answer = page.goto(f"{private_site.url}{path}")
        assert answer.status == 401, path
        assert page.locator("#token").is_visible()
        shown = page.locator("main").inner_text()  # (the URL itself is in the form's next)
        assert "secret-prep" not in shown and "alpha-only" not in shown
    snap(page, "private-signed-out")


def test_signing_in_shows_the_team_its_own_things(
    private_site: PrivateSite, page: Any, snap: Shots
) -> None:
    sign_in(page, private_site.url, private_site.alpha_token)
    cookie = next(c for c in page.context.cookies() if c["name"] == "modreg_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.locator("#modules .title").all_inner_texts() == [
        f"{private_site.alpha}/secret-prep"
    ]
    assert private_site.run_id in page.locator("main").inner_text()  # recent runs
    snap(page, "private-signed-in")
    api = page.goto(f"{private_site.url}/api/v1/modules")  # the cookie is sent, and ignored
    assert api.status == 401
    page.goto(private_site.url)
    with page.expect_navigation():
        page.click("text=Sign out")
    assert page.locator("#token").is_visible()  # back to the sign-in form
    assert not [c for c in page.context.cookies() if c["name"] == "modreg_token"]


def test_another_teams_token_sees_none_of_it(
    private_site: PrivateSite, page: Any, snap: Shots
) -> None:
    sign_in(page, private_site.url, private_site.beta_token)
    assert page.locator("#modules .title").count() == 0
    assert "secret-prep" not in page.content()
    answer = page.goto(f"{private_site.url}/modules/{private_site.alpha}/secret-prep")
    assert answer.status == 403 and "Permission denied" in page.locator("h1").inner_text()
    snap(page, "private-forbidden")
    answer = page.goto(f"{private_site.url}/runs/{private_site.run_id}")
    assert answer.status == 404
    page.goto(f"{private_site.url}/runs")
    assert private_site.run_id not in page.content()


def test_sign_in_refuses_a_post_without_the_forms_csrf_token(
    private_site: PrivateSite, page: Any
) -> None:
    page.goto(f"{private_site.url}/signin")  # sets the CSRF cookie
    answer = page.request.post(
        f"{private_site.url}/signin",
        form={"token": private_site.alpha_token, "csrf": "guessed"},
        max_redirects=0,
    )
    assert answer.status == 403 and "CSRF" in answer.text()
    assert not [c for c in page.context.cookies() if c["name"] == "modreg_token"]


def test_a_bad_token_is_refused_at_sign_in(private_site: PrivateSite, page: Any) -> None:
    page.goto(f"{private_site.url}/signin")
    page.fill("#token", "mr_not-a-token")
    page.click("form.stack button[type=submit]")
    assert "unknown token" in page.locator(".notice").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == "modreg_token"]
