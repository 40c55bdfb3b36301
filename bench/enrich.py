"""Cost of ingest enrichment per event: user-agent parsing cold and warm, and a whole event row.

Run: backend/.venv/bin/python bench/enrich.py  (writes bench/results/enrich.json)
"""

import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))

import orjson  # noqa: E402
import ua_parser  # noqa: E402
from ua_parser import BasicResolver, Domain, load_lazy_builtins  # noqa: E402

from pulseboard.ingest import enrich as en  # noqa: E402
from pulseboard.ingest.schemas import EventIn  # noqa: E402
from pulseboard.ingest.service import Client, Sender, event_row  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "enrich.json"
NOW = datetime.now(UTC)
EVENT_ID = str(uuid.uuid4())
DISTINCT_UAS = 200
WARM_CALLS = 200_000
EVENTS = 20_000
REPEATS = 5
SALT = os.urandom(32)
PROJECT = str(uuid.uuid4())


def user_agents(rng: random.Random) -> list[str]:
    """About 200 distinct UAs shaped like real traffic: many browser builds, a few bots."""
    chrome = "Chrome/{v}.0.{b}.{p}"
    pool: set[str] = set()
    for v in range(112, 132):
        b, p = 5600 + v * 7, rng.randint(50, 200)
        c = chrome.format(v=v, b=b, p=p)
        pool |= {
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"{c} Safari/537.36",
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) {c} Safari/537.36",
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"{c} Safari/537.36 Edg/{v}.0.{b - 3000}.{p}",
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
            f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
            f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"{c} Safari/537.36",
        }
    phones = ["Pixel 7", "Pixel 8", "SM-S911B", "SM-A546B", "2201117TG", "CPH2451", "moto g(60)"]
    for model in phones:
        for v in (124, 126, 128, 130):
            pool.add(
                f"Mozilla/5.0 (Linux; Android {rng.choice((12, 13, 14))}; {model}) "
                f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36"
            )
    for model in ("SM-X710", "SM-T220", "Lenovo TB-X606F"):
        pool.add(
            f"Mozilla/5.0 (Linux; Android 13; {model}) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
        )
    for major, minor in [(15, 7), (16, 6), (17, 0), (17, 1), (17, 2), (17, 3), (17, 4), (17, 5)]:
        os_v, safari_v = f"{major}_{minor}", f"{major}.{minor}"
        for device, os_name in (("iPhone", "iPhone OS"), ("iPad", "OS")):
            pool.add(
                f"Mozilla/5.0 ({device}; CPU {os_name} {os_v} like Mac OS X) "
                f"AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{safari_v} Mobile/15E148 "
                f"Safari/604.1"
            )
        pool.add(
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{safari_v} Safari/605.1.15"
        )
        pool.add(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {os_v} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
        )
        pool.add(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {os_v} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/44{minor}.0.0.40.111;"
            f"FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/{safari_v};FBLC/en_US;FBOP/5]"
        )
    for v in (22, 23, 24, 25):
        pool.add(
            f"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) SamsungBrowser/{v}.0 Chrome/117.0.0.0 Mobile Safari/537.36"
        )
    pool |= {
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
        "+https://openai.com/gptbot)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/126.0.0.0 Safari/537.36",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "curl/8.4.0",
        "python-requests/2.31.0",
        "Go-http-client/2.0",
    }
    ordered = sorted(pool)
    rng.shuffle(ordered)
    return ordered[:DISTINCT_UAS]


def zipf_mix(rng: random.Random, items: Sequence[str], n: int) -> list[str]:
    """Traffic where a few UAs dominate, as in real logs."""
    weights = [1 / (rank + 1) for rank in range(len(items))]
    return rng.choices(list(items), weights=weights, k=n)


def events(rng: random.Random, uas: Sequence[str], n: int) -> list[tuple[str, str, str, str]]:
    paths = ["/", "/pricing", "/blog/launch-week", "/docs/getting-started", "/signup", "/about"]
    queries = ["", "", "", "?utm_source=Twitter&utm_medium=social&utm_campaign=launch", "?ref=hn"]
    referrers = [
        "",
        "https://www.google.com/",
        "https://example.com/",
        "https://news.ycombinator.com/item?id=1",
        "https://t.co/x",
        "android-app://com.google.android.gm/",
    ]
    mix = zipf_mix(rng, uas, n)
    return [
        (
            ua,
            rng.choice(referrers),
            f"https://www.example.com{rng.choice(paths)}{rng.choice(queries)}",
            ".".join(str(rng.randint(1, 223 if octet == 0 else 254)) for octet in range(4)),
        )
        for ua in mix
    ]


def per_call_us(run: Callable[[], int], repeats: int = REPEATS) -> dict[str, float]:
    """Run `run` (which returns how many calls it made) a few times; µs per call."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter_ns()
        calls = run()
        samples.append((time.perf_counter_ns() - start) / calls / 1_000)
    return {"min": round(min(samples), 3), "median": round(statistics.median(samples), 3)}


def main() -> None:
    rng = random.Random(20240501)
    started = time.perf_counter()

    build_start = time.perf_counter()
    en.warm_up()
    parser_build_ms = (time.perf_counter() - build_start) * 1_000

    uas = user_agents(rng)
    traffic = zipf_mix(rng, uas, WARM_CALLS)
    sample = events(rng, uas, EVENTS)
    resolver = en._get_resolver()
    results: dict[str, Any] = {}

    def cold_parse() -> int:
        calls = 0
        for _ in range(20):
            en._parse_cached.cache_clear()
            for ua in uas:
                en.parse_user_agent(ua)
            calls += len(uas)
        return calls

    def rust_resolver_only() -> int:
        for _ in range(20):
            for ua in uas:
                resolver(ua, Domain.ALL)
        return 20 * len(uas)

    def warm_parse() -> int:
        for ua in traffic:
            en.parse_user_agent(ua)
        return len(traffic)

    # One event per request, the worst case: the request-level work (`Sender`) is paid each time.
    def enrich_one(ua: str, referrer: str, url: str, ip: str) -> None:
        sender = Sender.of(Client(user_agent=ua, ip=ip, origin=None), SALT, PROJECT)
        event = EventIn.model_construct(
            event="pageview",
            page_url=url,
            referrer=referrer,
            properties={},
            distinct_id=None,
            session_id=None,
            timestamp=None,
            uuid=None,
        )
        event_row(event, NOW, sender, EVENT_ID)

    def enrich_warm() -> int:
        for ua, referrer, url, ip in sample:
            enrich_one(ua, referrer, url, ip)
        return len(sample)

    def enrich_cold() -> int:
        calls = 0
        for _ in range(10):
            en._parse_cached.cache_clear()
            en.page_parts.cache_clear()
            en.referrer_domain.cache_clear()
            for ua, (_, referrer, url, ip) in zip(uas, sample, strict=False):
                enrich_one(ua, referrer, url, ip)
            calls += len(uas)
        return calls

    def parts(fn: Callable[[str, str, str, str], object]) -> Callable[[], int]:
        def run() -> int:
            for ua, referrer, url, ip in sample:
                fn(ua, referrer, url, ip)
            return len(sample)

        return run

    results["ua_cold_per_call_us"] = per_call_us(cold_parse)
    results["ua_warm_per_call_us"] = per_call_us(warm_parse)
    results["enrich_per_event_us"] = per_call_us(enrich_warm)
    results["enrich_per_event_cold_ua_us"] = per_call_us(enrich_cold)
    results["components_per_call_us"] = {
        "rust_resolver_all_domains": per_call_us(rust_resolver_only),
        "page_parts": per_call_us(parts(lambda _u, _r, url, _i: en.page_parts(url))),
        "referrer_domain": per_call_us(
            parts(lambda _u, referrer, _p, _i: en.referrer_domain(referrer, "example.com"))
        ),
        "ip_hash": per_call_us(parts(lambda _u, _r, _p, ip: en.ip_hash(SALT, PROJECT, ip))),
        "client_ip_trusted_proxy": per_call_us(
            parts(
                lambda _u, _r, _p, ip: en.client_ip(
                    {"x-forwarded-for": f"{ip}, 10.0.0.1"}, "10.0.0.2", True
                )
            )
        ),
    }

    # Alternatives the parser setup was chosen against.
    basic = BasicResolver(load_lazy_builtins())
    subset = uas[:50]

    def basic_cold() -> int:
        for ua in subset:
            basic(ua, Domain.ALL)
        return len(subset)

    ua_parser.parse(uas[0])  # build the library's global parser before timing it

    def library_default_warm() -> int:
        for ua in traffic[:50_000]:
            ua_parser.parse(ua)
        return 50_000

    results["alternatives_per_call_us"] = {
        "basic_python_resolver_cold": per_call_us(basic_cold, repeats=2),
        "ua_parser_parse_default_s3fifo_warm": per_call_us(library_default_warm),
    }

    event = {
        "event": "$pageview",
        "properties": {"plan": "pro", "button": "signup-hero", "variant": "b", "title": "Pricing"},
        "distinct_id": "u_4f9c2b1e7a",
        "session_id": "s_8d3e5a0c21",
        "page_url": "https://www.example.com/pricing?utm_source=twitter&utm_medium=social",
        "referrer": "https://news.ycombinator.com/item?id=40123456",
        "timestamp": "2024-05-01T12:34:56.789Z",
        "uuid": "0b9f6a52-3c1d-4e8f-9a7b-6c5d4e3f2a1b",
    }
    raw = orjson.dumps(event)

    def orjson_loads() -> int:
        for _ in range(100_000):
            orjson.loads(raw)
        return 100_000

    results["reference_orjson_loads_event_us"] = per_call_us(orjson_loads)
    results["reference_event_bytes"] = len(raw)
    results["parser_build_ms"] = round(parser_build_ms, 1)
    results["distinct_user_agents"] = len(uas)
    results["warm_traffic_calls"] = WARM_CALLS
    results["events"] = EVENTS
    results["bots_in_mix"] = sum(en.parse_user_agent(ua).is_bot for ua in uas)
    results["environment"] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "ua_parser": version("ua-parser"),
        "ua_parser_rs": version("ua-parser-rs"),
        "ua_parser_builtins": version("ua-parser-builtins"),
        "orjson": version("orjson"),
    }
    results["notes"] = (
        "min and median over repeats; warm = 200k lookups in a Zipf mix of the distinct UAs; "
        "the basic resolver's median includes compiling its lazy Python regexes on first use"
    )
    results["wall_seconds"] = round(time.perf_counter() - started, 1)

    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, dict[str, float]]] = [
        ("parse_user_agent, cold (cache miss)", results["ua_cold_per_call_us"]),
        ("parse_user_agent, warm (cache hit)", results["ua_warm_per_call_us"]),
        ("enrich per event, warm UA cache", results["enrich_per_event_us"]),
        ("enrich per event, new UA every time", results["enrich_per_event_cold_ua_us"]),
    ]
    rows += [(f"  {name}", v) for name, v in results["components_per_call_us"].items()]
    rows += [(f"  alt: {name}", v) for name, v in results["alternatives_per_call_us"].items()]
    rows.append(
        (
            f"reference: orjson.loads of a {results['reference_event_bytes']}-byte event",
            results["reference_orjson_loads_event_us"],
        )
    )
    print(f"{'measure':<58}{'µs min':>10}{'µs median':>12}")
    for name, v in rows:
        print(f"{name:<58}{v['min']:>10.3f}{v['median']:>12.3f}")
    print(
        f"\nparser build {results['parser_build_ms']} ms (once per process); "
        f"{results['distinct_user_agents']} distinct UAs, {results['bots_in_mix']} of them bots; "
        f"{results['wall_seconds']} s"
    )


if __name__ == "__main__":
    main()
