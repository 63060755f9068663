"""Can one stranger knock the Space over? Bursts of hostile requests against `python app.py` on its defaults.

    python benchmarks/bench_reliability.py [--bursts 3] [--size 12] [--json runs/bench_reliability.json]
    python benchmarks/bench_reliability.py --max-pixels 100000000   # the same with the pixel limit raised

The server runs as a visitor's machine runs it (`python app.py`, CPU, concurrency 2, its own gradio cache) on
loopback. Each burst sends 12 concurrent `/age` requests: half a 99.99 MP PNG of one colour (290 KB), half a
629-byte JPEG whose header claims 10000 x 10000 pixels (a header and an end marker, no image data). Reported:
each request's answer (the message must name its cause) and time (at most 60 s), the server's peak resident
memory against its budget (sampled every 20 ms), its memory before and after each burst (within 300 MB), then
one normal request, a 12 MP photo of a face aged to 70 (with a camera's grain, so the file is as large as a
phone's), and the bytes it wrote to gradio's cache, the upload included, against the upload. With ``--max-pixels 100000000`` the PNGs pass the pixel limit and are decoded, so the memory budget
itself is what keeps the server under its limit (one such photo at a time).
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.bench_memory import make_photo
from benchmarks.common import markdown_table, write_json
from space.serve import serve

BURST = 12
ANSWER_SECONDS = 60.0
SETTLE_SECONDS = 3.0
MB = 1e6
META = {"_type": "gradio.FileData"}
# what a message names: the pixel count, the data cut short, or (where the photo was decoded) the missing face
CAUSES = ("MP", "truncated", "too large", "No face found")


def one_colour_png(width: int, height: int) -> bytes:
    """A grey PNG of any size in a few hundred KB: each row is a filter byte and zeros, compressed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = bytes(1 + width)  # filter 0, grey level 0
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def header_only_jpeg(width: int, height: int) -> bytes:
    """A real JPEG's header with the size changed, then the end marker: no image data at all."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 90, 90)).save(buffer, "JPEG", quality=50)
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, frame + 5, height, width)
    scan = data.find(b"\xff\xda")
    return bytes(data[: scan + 2 + int.from_bytes(data[scan + 2 : scan + 4], "big")]) + b"\xff\xd9"


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    return 0.0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Server:
    """`python app.py` on a free loopback port with its own gradio cache (space.serve), and raw HTTP calls to its
    API."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        try:
            self.served = serve(root, env, timeout=300)
        except RuntimeError as error:
            raise SystemExit(str(error)) from None
        self.cache, self.url, self.process = self.served.cache, self.served.url, self.served.process
        self.peak_mb = self.rss_mb
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def rss_mb(self) -> float:
        return resident_mb(self.process.pid)

    def _sample(self) -> None:
        while not self._sampling.is_set():
            self.peak_mb = max(self.peak_mb, self.rss_mb)
            time.sleep(0.02)

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        import httpx

        answer = httpx.post(f"{self.url}/gradio_api/upload", files={"files": (name, data)}, timeout=60)
        answer.raise_for_status()
        return {"path": answer.json()[0], "meta": META}

    def age(self, photo: dict[str, Any], years: float = 70) -> tuple[str, Any, float]:
        """(event, data, seconds) of one /age call: event is "complete" or "error"."""
        import httpx

        started = time.monotonic()
        call = httpx.post(
            f"{self.url}/gradio_api/call/age", json={"data": [photo, years, "all", "default"]}, timeout=ANSWER_SECONDS
        )
        call.raise_for_status()
        stream = httpx.get(f"{self.url}/gradio_api/call/age/{call.json()['event_id']}", timeout=ANSWER_SECONDS * 5)
        event, payload = "", None
        for line in stream.text.splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
        return event, payload, time.monotonic() - started

    def stop(self) -> None:
        self._sampling.set()
        self.served.stop()


def burst(server: Server, files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Upload every file, then send one /age request for each at once."""
    photos = [(name, server.upload(name, data)) for name, data in files]

    def send(item: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        name, photo = item
        event, payload, seconds = server.age(photo)
        message = (payload or {}).get("error") if isinstance(payload, dict) else None
        return {"file": name, "event": event, "message": message or "", "seconds": seconds}

    with ThreadPoolExecutor(len(photos)) as pool:
        return list(pool.map(send, photos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--size", type=float, default=12.0, help="megapixels of the normal request after the bursts")
    parser.add_argument("--max-pixels", type=int, help="the Space's pixel limit (default: its own, 50 MP)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    env = {"GANIME_AGE_MAX_PIXELS": str(args.max_pixels)} if args.max_pixels else {}
    budget_mb = 4000.0
    hostile = [("huge.png", one_colour_png(10_000, 9_999)), ("header-only.jpg", header_only_jpeg(10_000, 10_000))]
    print(", ".join(f"{name}: {len(data):,} bytes" for name, data in hostile))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        server = Server(root, env)
        try:
            bursts = []
            for number in range(1, args.bursts + 1):
                before = server.rss_mb
                answers = burst(server, [hostile[i % 2] for i in range(BURST)])
                time.sleep(SETTLE_SECONDS)
                after = server.rss_mb
                named = sum(a["event"] == "error" and any(c in a["message"] for c in CAUSES) for a in answers)
                bursts.append(
                    {
                        "burst": number,
                        "named": named,
                        "slowest_s": max(a["seconds"] for a in answers),
                        "before_mb": before,
                        "after_mb": after,
                        "answers": answers,
                    }
                )
                print(
                    f"burst {number}: {named}/{BURST} named their cause, slowest {bursts[-1]['slowest_s']:.1f} s, "
                    f"{before:.0f} -> {after:.0f} MB"
                )
            photo = make_photo(root, args.size, grain=3.0)  # a camera's grain: a phone-sized file
            upload = photo.read_bytes()
            written_before = folder_bytes(server.cache)
            event, _payload, seconds = server.age(server.upload(photo.name, upload))
            written = folder_bytes(server.cache) - written_before
            normal = {"event": event, "seconds": seconds, "upload_bytes": len(upload), "written_bytes": written}
            print(
                f"{args.size:g} MP request: {event} in {seconds:.1f} s, wrote {written / MB:.1f} MB "
                f"for a {len(upload) / MB:.1f} MB upload ({written / len(upload):.2f}x)"
            )
            peak = server.peak_mb
        finally:
            server.stop()
    rows = [
        {
            "burst": b["burst"],
            "answered with their cause": f"{b['named']}/{BURST}",
            "slowest answer s": f"{b['slowest_s']:.1f}",
            "RSS before MB": f"{b['before_mb']:.0f}",
            "RSS after MB": f"{b['after_mb']:.0f}",
            "change MB": f"{b['after_mb'] - b['before_mb']:+.0f}",
        }
        for b in bursts
    ]
    print(markdown_table(rows, list(rows[0])))
    passed = {
        "every request named its cause within 60 s": all(
            b["named"] == BURST and b["slowest_s"] <= ANSWER_SECONDS for b in bursts
        ),
        f"peak RSS {peak:.0f} MB <= budget {budget_mb:.0f} MB": peak <= budget_mb,
        "memory after each burst within 300 MB of before": all(
            abs(b["after_mb"] - b["before_mb"]) <= 300 for b in bursts
        ),
        f"a {args.size:g} MP request answered after the bursts": normal["event"] == "complete",
        "bytes written <= 4x the upload": normal["written_bytes"] <= 4 * normal["upload_bytes"],
    }
    for claim, ok in passed.items():
        print(f"{'PASS' if ok else 'FAIL'}  {claim}")
    print("sample messages:", sorted({a["message"][:160] for b in bursts for a in b["answers"]}))
    write_json(args.json, {"bursts": bursts, "normal": normal, "peak_mb": peak, "passed": passed})
    sys.exit(0 if all(passed.values()) else 1)


if __name__ == "__main__":
    main()
