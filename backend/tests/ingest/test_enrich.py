"""Event enrichment: what ends up in the browser, device, referrer, UTM and visitor columns."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from pulseboard.core.settings import Settings
from pulseboard.ingest.enrich import (
    MAX_NAME,
    MAX_PATH,
    MAX_USER_AGENT,
    MAX_UTM,
    Agent,
    client_ip,
    ip_hash,
    page_parts,
    parse_user_agent,
    referrer_domain,
)
from pulseboard.ingest.schemas import EventIn, Limits
from pulseboard.ingest.service import Client, Sender, event_row

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SALT = b"daily-salt-2024-05-01"
PROJECT = "6f1c2a9e-1d7b-4a0e-9a53-2b8f6f3c0d11"


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        pytest.param(
            CHROME_WINDOWS,
            Agent("Chrome", "120", "Windows", "10", "desktop", False),
            id="chrome-windows",
        ),
        pytest.param(
            SAFARI_IPHONE,
            Agent("Safari", "17", "iOS", "17", "mobile", False),
            id="safari-iphone",
        ),
        pytest.param(
            "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            Agent("Safari", "17", "iOS", "17", "tablet", False),
            id="safari-ipad",
        ),
        pytest.param(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            Agent("Safari", "17", "macOS", "10", "desktop", False),
            id="safari-mac",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            Agent("Chrome", "120", "Android", "14", "mobile", False),
            id="chrome-android-phone",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            Agent("Chrome", "120", "Android", "13", "tablet", False),
            id="chrome-android-tablet",
        ),
        pytest.param(
            "Mozilla/5.0 (Android 13; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
            Agent("Firefox", "121", "Android", "13", "tablet", False),
            id="firefox-android-tablet",
        ),
        pytest.param(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            Agent("Chrome", "120", "iOS", "17", "mobile", False),
            id="chrome-iphone",
        ),
        pytest.param(
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            Agent("Firefox", "121", "Linux", None, "desktop", False),
            id="firefox-linux",
        ),
        pytest.param(
            CHROME_WINDOWS + " Edg/120.0.2210.91",
            Agent("Edge", "120", "Windows", "10", "desktop", False),
            id="edge-windows",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
            "(KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
            Agent("Samsung Internet", "24", "Android", "14", "mobile", False),
            id="samsung-internet",
        ),
        pytest.param(
            # "bot" inside a phone brand is not a bot.
            "Mozilla/5.0 (Linux; Android 10; CUBOT P40) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            Agent("Chrome", "120", "Android", "10", "mobile", False),
            id="cubot-phone",
        ),
        pytest.param(
            "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 "
            "(KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36",
            Agent("Safari", None, "Tizen", "6", "other", False),
            id="smart-tv",
        ),
        pytest.param(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            Agent("Googlebot", "2", "Unknown", None, "bot", True),
            id="googlebot",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 "
            "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            Agent("Googlebot", "2", "Android", "6", "bot", True),
            id="googlebot-smartphone",
        ),
        pytest.param(
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
            "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            Agent("bingbot", "2", "Unknown", None, "bot", True),
            id="bingbot",
        ),
        pytest.param("curl/8.4.0", Agent("curl", "8", "Unknown", None, "bot", True), id="curl"),
        pytest.param(
            "python-requests/2.31.0",
            Agent("Python Requests", "2", "Unknown", None, "bot", True),
            id="python-requests",
        ),
        pytest.param(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36",
            Agent("HeadlessChrome", "120", "Linux", None, "bot", True),
            id="headless-chrome",
        ),
        pytest.param("", Agent("Unknown", None, "Unknown", None, "other", False), id="empty"),
        pytest.param(None, Agent("Unknown", None, "Unknown", None, "other", False), id="none"),
    ],
)
def test_parse_user_agent(ua: str | None, expected: Agent) -> None:
    assert parse_user_agent(ua) == expected


@pytest.mark.parametrize(
    "ua",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36 "
        "Chrome-Lighthouse",
        "Wget/1.21.4",
        "Go-http-client/2.0",
        "axios/1.6.2",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Java/17.0.9",
        "Scrapy/2.11.0 (+https://scrapy.org)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    ],
)
def test_bot_markers_flag_the_agent(ua: str) -> None:
    agent = parse_user_agent(ua)
    assert agent.is_bot
    assert agent.device == "bot"


def test_names_fit_their_columns() -> None:
    agent = parse_user_agent("Mozilla/5.0 (compatible; " + "Very" * 40 + "Bot/1.0)")
    assert agent.is_bot
    assert len(agent.browser) <= MAX_NAME


def test_user_agents_are_cached_and_capped() -> None:
    assert parse_user_agent(SAFARI_IPHONE) is parse_user_agent(SAFARI_IPHONE)
    # A huge header parses like its first kilobyte instead of landing whole in the cache.
    padded = CHROME_WINDOWS + " x" * MAX_USER_AGENT
    assert parse_user_agent(padded) is parse_user_agent(padded[:MAX_USER_AGENT])


@pytest.mark.parametrize(
    ("referrer", "expected"),
    [
        pytest.param("https://www.google.com/search?q=pulseboard", "google.com", id="www-stripped"),
        pytest.param("https://News.YCombinator.com/item?id=1", "news.ycombinator.com", id="lower"),
        pytest.param("https://t.co/abc", "t.co", id="external"),
        pytest.param("http://github.com:8080/x", "github.com", id="port-dropped"),
        pytest.param("https://blog.example.com/post", "blog.example.com", id="subdomain-external"),
        pytest.param("https://example.com/pricing", None, id="same-site"),
        pytest.param("https://www.example.com/", None, id="same-site-www"),
        pytest.param("android-app://com.google.android.gm/", "com.google.android.gm", id="app"),
        pytest.param("android-app://", None, id="app-empty"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param("not a url", None, id="garbage"),
        pytest.param("http://[::1", None, id="broken-ipv6"),
        pytest.param("http://<script>/", None, id="bad-host"),
        pytest.param("about:blank", None, id="about-blank"),
        pytest.param("chrome-extension://abcdef/page.html", None, id="extension"),
    ],
)
def test_referrer_domain(referrer: str | None, expected: str | None) -> None:
    assert referrer_domain(referrer, "example.com") == expected


def test_referrer_same_site_check_ignores_page_host_www_case_and_port() -> None:
    assert referrer_domain("https://example.com/a", "WWW.Example.com:8443") is None
    assert referrer_domain("https://example.com/a", None) == "example.com"


def test_page_parts_split_host_path_and_utm() -> None:
    page = page_parts(
        "https://www.Example.com/pricing/?utm_source=Google&utm_medium=CPC"
        "&utm_campaign=Spring%20Sale&utm_term=analytics+tool&utm_content=hero#plans"
    )
    assert page.host == "example.com"
    assert page.path == "/pricing/"
    assert page.utm_source == "google"
    assert page.utm_medium == "cpc"
    assert page.utm_campaign == "Spring Sale"
    assert page.utm_term == "analytics tool"
    assert page.utm_content == "hero"


@pytest.mark.parametrize(
    ("query", "source"),
    [
        pytest.param("utm_source=Newsletter&source=x&ref=y", "newsletter", id="utm-first"),
        pytest.param("source=Newsletter&ref=y", "newsletter", id="source-next"),
        pytest.param("ref=ProductHunt", "producthunt", id="ref-last"),
        pytest.param("utm_source=&ref=ProductHunt", "producthunt", id="blank-utm-skipped"),
        pytest.param("utm_source=a&utm_source=b", "a", id="first-value-wins"),
        pytest.param("q=1", None, id="none"),
    ],
)
def test_utm_source_fallbacks(query: str, source: str | None) -> None:
    assert page_parts(f"https://example.com/?{query}").utm_source == source


def test_page_parts_caps_lengths() -> None:
    page = page_parts(
        "https://example.com/" + "a" * 5_000 + "?utm_campaign=" + "c" * 500 + "&utm_source=S" * 2
    )
    assert len(page.path) == MAX_PATH
    assert page.utm_campaign == "c" * MAX_UTM
    assert page.utm_source == "s"


def test_percent_encoded_nuls_leave_utm_values() -> None:
    # `%00` decodes to a NUL, which no column can hold: it is dropped, the rest kept.
    page = page_parts("https://example.com/?utm_campaign=spr%00ing&utm_source=%00")
    assert page.utm_campaign == "spring"
    assert page.utm_source is None


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        pytest.param("https://example.com", "example.com", "/", id="empty-path"),
        pytest.param("https://example.com?utm_source=x", "example.com", "/", id="query-only"),
        pytest.param("/docs/start?x=1", None, "/docs/start", id="relative"),
        pytest.param("", None, "/", id="empty"),
        pytest.param(None, None, "/", id="none"),
        pytest.param("http://[broken/x", None, "/", id="unparsable"),
    ],
)
def test_page_parts_edges(url: str | None, host: str | None, path: str) -> None:
    page = page_parts(url)
    assert (page.host, page.path) == (host, path)


def test_ip_hash_is_stable_and_hides_the_ip() -> None:
    digest = ip_hash(SALT, PROJECT, "203.0.113.7")
    assert digest == ip_hash(SALT, PROJECT, "203.0.113.7")
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")
    assert "203.0.113.7" not in digest


def test_ip_hash_differs_by_salt_project_and_ip() -> None:
    base = ip_hash(SALT, PROJECT, "203.0.113.7")
    assert ip_hash(b"next-day-salt", PROJECT, "203.0.113.7") != base
    assert ip_hash(SALT, "another-project", "203.0.113.7") != base
    assert ip_hash(SALT, PROJECT, "203.0.113.8") != base


@pytest.mark.parametrize(
    ("headers", "peer", "trust", "expected"),
    [
        pytest.param({"x-forwarded-for": "198.51.100.2"}, "10.0.0.1", False, "10.0.0.1", id="no"),
        pytest.param(
            {"x-forwarded-for": "198.51.100.2, 10.0.0.5"},
            "10.0.0.1",
            True,
            "198.51.100.2",
            id="xff-first",
        ),
        pytest.param(
            {"X-Forwarded-For": "unknown, 198.51.100.2:5123"},
            "10.0.0.1",
            True,
            "198.51.100.2",
            id="xff-skip-invalid-and-port",
        ),
        pytest.param({"X-Real-IP": "2001:db8::7"}, "10.0.0.1", True, "2001:db8::7", id="real-ip"),
        pytest.param(
            {"x-forwarded-for": "[2001:DB8::7]:443"}, None, True, "2001:db8::7", id="ipv6-port"
        ),
        pytest.param({"x-forwarded-for": "garbage"}, "10.0.0.1", True, "10.0.0.1", id="fallback"),
        pytest.param({}, "::ffff:192.0.2.9", False, "192.0.2.9", id="ipv4-mapped-peer"),
        pytest.param({}, "testclient", False, None, id="peer-not-an-ip"),
        pytest.param({}, None, True, None, id="nothing"),
    ],
)
def test_client_ip(
    headers: dict[str, str], peer: str | None, trust: bool, expected: str | None
) -> None:
    assert client_ip(headers, peer, trust) == expected


def _enriched(
    ua: str | None, referrer: str | None, page_url: str | None, ip: str | None
) -> SimpleNamespace:
    """The derived columns of one event as the ingest API builds it."""
    sender = Sender.of(Client(user_agent=ua, ip=ip, origin=None), SALT, PROJECT)
    event = EventIn.model_validate(
        {"event": "pageview", "page_url": page_url, "referrer": referrer},
        context={"limits": Limits.from_settings(Settings(secret_key="k" * 40))},
    )
    row = event_row(event, datetime.now(UTC), sender, str(uuid.uuid4()))
    return SimpleNamespace(**{column: row[column] for column in DERIVED})


DERIVED = (
    "browser",
    "os",
    "device",
    "is_bot",
    "referrer_domain",
    "host",
    "path",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "ip_hash",
)


def test_enrich_combines_every_column() -> None:
    result = _enriched(
        SAFARI_IPHONE,
        "https://www.twitter.com/someone/status/1",
        "https://www.example.com/blog/post?utm_source=Twitter&utm_medium=Social#top",
        "203.0.113.7",
    )
    assert vars(result) == {
        "browser": "Safari",
        "os": "iOS",
        "device": "mobile",
        "is_bot": False,
        "referrer_domain": "twitter.com",
        "host": "example.com",
        "path": "/blog/post",
        "utm_source": "twitter",
        "utm_medium": "social",
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "ip_hash": ip_hash(SALT, PROJECT, "203.0.113.7"),
    }


def test_enrich_internal_navigation_and_missing_ip() -> None:
    result = _enriched(None, "https://example.com/", "https://www.example.com/docs", None)
    assert result.referrer_domain is None
    assert result.ip_hash is None
    assert (result.browser, result.device, result.is_bot) == ("Unknown", "other", False)
