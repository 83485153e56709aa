"""The sign-in page in real headless Chromium: after a password sign-in it only ever moves
on to a path of this server, whatever ``next`` says (no open redirect)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.async_api import Browser

from tests.conftest import RunningServer

pytestmark = [pytest.mark.browser]


@pytest.mark.parametrize(
    "next_path",
    ["/\\evil.example/", "//evil.example/", "https://evil.example/", "/\\/evil.example"],
)
async def test_sign_in_never_leaves_the_server(
    browser: Browser, text_server: RunningServer, next_path: str
) -> None:
    text_server.server.auth.add_user("kim", "agent", password="correct horse")
    page = await browser.new_page()
    await page.goto(f"{text_server.http}/login.html?next={quote(next_path, safe='')}")
    await page.get_by_test_id("login-name").fill("kim")
    await page.get_by_test_id("login-password").fill("correct horse")
    async with page.expect_navigation():
        await page.get_by_test_id("login-submit").click()
    assert page.url.startswith(text_server.http + "/"), page.url
    await page.close()


async def test_sign_in_follows_a_path_of_this_server(
    browser: Browser, text_server: RunningServer
) -> None:
    text_server.server.auth.add_user("kim", "agent", password="correct horse")
    page = await browser.new_page()
    await page.goto(f"{text_server.http}/login.html?next={quote('/review.html?x=1', safe='')}")
    await page.get_by_test_id("login-name").fill("kim")
    await page.get_by_test_id("login-password").fill("correct horse")
    async with page.expect_navigation():
        await page.get_by_test_id("login-submit").click()
    assert page.url == f"{text_server.http}/review.html?x=1"
    await page.close()
