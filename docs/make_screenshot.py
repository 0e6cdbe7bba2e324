"""Screenshot of the web page's self-attention steps, for the README (``docs/serve-self-attention.png``).

    python docs/make_screenshot.py RUN [--sentence "..."] [--out docs/serve-self-attention.png]

Starts ``seqlab serve RUN`` on a free loopback port, opens the page in headless Chromium (Debian's
``chromium`` through Playwright), shows the encoder self-attention of the sentence, picks a word,
and saves the view as a palette PNG (kept small for the repository).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--sentence", default="The red cars are not in front of the door.")
    p.add_argument("--word", type=int, default=2, help="index of the query word to pick")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "serve-self-attention.png")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "seqlab", "serve", str(args.run), "--port", str(port),
                               "--log-level", "warning"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(url)
            page.wait_for_selector("#sa-model option", state="attached")
            page.click("[data-tab=steps]")
            page.fill("#sa-input", args.sentence)
            page.click("#sa-go")
            page.wait_for_selector("[data-step='5']")
            page.click(f"#sa-tokens button[data-index='{args.word}']")
            raw = args.out.with_suffix(".raw.png")
            page.screenshot(path=str(raw), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    from PIL import Image

    Image.open(raw).convert("RGB").quantize(colors=64).save(args.out, optimize=True)
    raw.unlink()
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
