"""Screenshots of the console's main pages at desktop and phone width, from the demo feed, in headless Chromium.

    python scripts/console_screenshot.py                 # -> docs/console-<page>-<desktop|phone>.png
    python scripts/console_screenshot.py --out /tmp/shots
    python scripts/console_screenshot.py --locale nl_BE   # -> docs/console-<page>-<size>-nl.png (Dutch pages)

The store is built as the browser tests build it (the sample feed through the
simulated worker and the real offline model, stopped on Thursday morning while
incidents are open); the console runs on a free loopback port. Needs Debian's
``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.console_fixtures import PASSWORD, chrome, demo_store, write_users  # noqa: E402

SIZES = {"desktop": (1200, 1500), "phone": (390, 1500)}


def shoot(base: str, browser: Any, out: Path, size: str, locale: str | None = None) -> list[Path]:
    from selenium.webdriver.common.by import By

    from monitor.console.web import LANGUAGE_COOKIE

    browser.get(f"{base}/login")
    if locale:  # what the language switch sets
        browser.add_cookie({"name": LANGUAGE_COOKIE, "value": locale, "path": "/"})
        browser.get(f"{base}/login")
    browser.find_element(By.ID, "user").send_keys("sofie")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    shots = []

    def save(name: str) -> None:
        path = out / f"console-{name}-{size}{'-' + locale.split('_')[0] if locale else ''}.png"
        browser.save_screenshot(str(path))
        shots.append(path)

    for detail in browser.find_elements(By.CSS_SELECTOR, "article.incident details")[:1]:
        detail.find_element(By.TAG_NAME, "summary").click()
    save("now")
    browser.get(f"{base}/rules")
    save("rules")
    browser.get(f"{base}/try")
    browser.find_element(By.ID, "post-text").send_keys("Lumora is pure oplichting, drie keer te veel aangerekend. "
                                                       "Schandalig!")
    browser.find_element(By.CSS_SELECTOR, "#post-language option[value='nl']").click()
    reach = browser.find_element(By.ID, "post-reach")
    reach.clear()
    reach.send_keys("48000")
    browser.find_element(By.ID, "try-post-go").click()
    browser.find_element(By.ID, "verdict").location_once_scrolled_into_view  # noqa: B018
    save("try")
    browser.get(f"{base}/plan?severity=critical&brand=Lumora&at=2026-11-18+21:40")
    save("plan")
    browser.get(f"{base}/silences")
    save("silences")
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--locale", choices=("nl_BE", "fr_BE", "en"), default=None,
                    help="the pages in this language (the switch's cookie); file names end in -nl / -fr / -en")
    args = ap.parse_args()
    from monitor.classify import load_model
    from monitor.console.server import console_server
    from monitor.settings import Settings

    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model("default")
    with tempfile.TemporaryDirectory(prefix="console-shot-") as work:
        engine, clock = demo_store(f"sqlite:///{work}/demo.db", model)
        settings = Settings(console_port=0, console_users=write_users(Path(work)), rules_dir=REPO / "rules",
                            escalation_file=REPO / "escalation.yaml")
        server = console_server(settings, engine, clock, model=model)
        server.start()
        try:
            for size, (width, height) in SIZES.items():
                browser: Any = chrome(width, height)
                try:
                    for path in shoot(f"http://localhost:{server.port}", browser, args.out, size, args.locale):
                        print(path)
                finally:
                    browser.quit()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
