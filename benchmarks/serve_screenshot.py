"""The README's picture of `sketchify serve`: the page in headless Chromium with the shipped weights.

    python benchmarks/serve_screenshot.py        # writes examples/serve.png (about a minute on 2 CPU cores)

Needs selenium (pip install -e '.[test]') and Chromium with its driver (Debian: apt-get install chromium
chromium-driver). Serves on a free loopback port, uploads two example photos, draws four samples of the first,
and saves the whole page.
"""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from sketchify.inference import Sketcher
from sketchify.serve import SketchServer

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = [ROOT / "examples/photos/100075.jpg", ROOT / "examples/photos/12003.jpg"]
WIDTH = 1280


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={WIDTH},900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main() -> None:
    server = SketchServer(("127.0.0.1", 0), Sketcher.from_pretrained(device="cpu"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser()
    try:
        wait = WebDriverWait(page, 300)
        page.get(server.url)
        wait.until(lambda b: b.execute_script(
            "const t = [...document.querySelectorAll('.style img')];"
            "return t.length > 0 && t.every((i) => i.complete && i.naturalWidth > 0)"))
        page.execute_script("document.getElementById('seed').value = 0")  # the same samples every run
        page.find_element(By.ID, "file").send_keys("\n".join(map(str, PHOTOS)))
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "img[alt^='sketch of']")) == len(PHOTOS))
        page.find_element(By.CSS_SELECTOR, f"button[aria-label='Draw several samples of {PHOTOS[0].name}']").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "img[alt^='sample ']")) == 4)
        height = page.execute_script("return document.documentElement.scrollHeight")
        page.set_window_size(WIDTH, height + 100)  # the window's frame takes some; the whole page fits
        page.execute_script("window.scrollTo(0, 0)")  # clicking Samples scrolled the header away
        out = ROOT / "examples/serve.png"
        shot = Image.open(io.BytesIO(page.get_screenshot_as_png())).convert("RGB")
        # 256 colours, median cut (it keeps the sketches' greys), no dither: a third of the bytes
        shot.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
        print(f"wrote {out.relative_to(ROOT)}")
    finally:
        page.quit()
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
