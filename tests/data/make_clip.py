"""Regenerate tests/data/clip.webm: a 2-second 160x120 VP8 clip recorded by headless Chromium.

The browser tests need a small real video, and no encoder (ffmpeg) is installed on the test
machines; Chromium's MediaRecorder is. Run once: ``.venv/bin/python tests/data/make_clip.py``.
"""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import sync_playwright

RECORD = """async () => {
  const c = document.createElement("canvas"); c.width = 160; c.height = 120;
  const g = c.getContext("2d");
  const rec = new MediaRecorder(c.captureStream(25),
                                {mimeType: "video/webm;codecs=vp8", videoBitsPerSecond: 100000});
  const parts = [];
  rec.ondataavailable = e => parts.push(e.data);
  const done = new Promise(r => rec.onstop = r);
  rec.start();
  const t0 = performance.now();
  await new Promise(r => {
    (function frame() {
      const t = (performance.now() - t0) / 2000;
      g.fillStyle = `hsl(${Math.round(t * 360)}, 70%, 50%)`; g.fillRect(0, 0, 160, 120);
      g.fillStyle = "#fff"; g.fillRect(10 + 120 * t, 50, 20, 20);
      if (t < 1) requestAnimationFrame(frame); else r();
    })();
  });
  rec.stop(); await done;
  const buf = new Uint8Array(await new Blob(parts).arrayBuffer());
  let s = ""; for (const b of buf) s += String.fromCharCode(b);
  return btoa(s);
}"""


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        data = base64.b64decode(page.evaluate(RECORD))
        browser.close()
    out = Path(__file__).with_name("clip.webm")
    out.write_bytes(data)
    print(f"{out}: {len(data)} bytes")


if __name__ == "__main__":
    main()
