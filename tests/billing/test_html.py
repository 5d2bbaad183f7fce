"""The HTML report: one self-contained page that headless Chromium renders without errors."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from reconciler.cli.svg import Series, bar_chart, breakdown_chart, nice_ceiling
from tests.billing.conftest import InProcess, write_state

T0, T1, NOW = "2026-11-01T00:00:00Z", "2026-11-02T06:00:00Z", "2026-11-04T00:00:00Z"
WINDOW = ("--from", "2026-11-01", "--to", "2026-11-08")
NO_CHROMIUM = "chromium is not installed; run scripts/setup/chromium.sh (Debian package 'chromium')"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An HTML report per mode, from two clusters sampled over a few days."""
    root = tmp_path_factory.mktemp("html")
    cli, infra = InProcess(root / "state"), write_state(root / "infra", count=3)
    (infra / "ops.yaml").write_text((infra / "cluster.yaml").read_text().replace("name: shop", "name: ops")
                                    .replace("count: 3", "count: 1"))
    assert cli("apply", str(infra), "--yes", now=T0).code == 0
    for now in (T1, "2026-11-03T00:00:00Z", NOW):
        assert cli("usage", "collect", str(infra), now=now).code == 0
    found = {}
    for mode in ("instance-hours", "measured", "both"):
        out = root / f"{mode}.html"
        result = cli("usage", "report", *WINDOW, "--mode", mode, "--by", "member", "--format", "html",
                     "--prices", str(infra), "--out", str(out), now=NOW)
        assert result.code == 0, result.err
        found[mode] = out
    return found


@pytest.mark.parametrize("mode", ["instance-hours", "measured", "both"])
def test_page_is_self_contained(pages: dict[str, Path], mode: str) -> None:
    text = pages[mode].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert re.search(r"""\b(src|href)\s*=""", text) is None  # nothing to fetch
    assert "<script" not in text
    assert re.findall(r"https?://[^\s\"']+", text) == ["http://www.w3.org/2000/svg"] * text.count("<svg ")
    svgs = re.findall(r"<svg .*?</svg>", text, flags=re.S)
    assert len(svgs) == 4  # daily cost by cluster, one per cluster (ops, shop), the breakdown
    for svg in svgs:
        ET.fromstring(svg)  # well-formed XML
    assert "Daily cost by cluster" in text and "Cluster shop: daily cost" in text
    assert "Breakdown by member" in text


def test_both_modes_page_shows_the_saving(pages: dict[str, Path]) -> None:
    text = pages["both"].read_text(encoding="utf-8")
    assert "Instance-hours and measured" in text and "saving" in text
    assert ">instance-hours</text>" in text and ">measured</text>" in text  # legend of the per-cluster charts


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.skipif(_chromium() is None, reason=NO_CHROMIUM)
@pytest.mark.parametrize("mode", ["instance-hours", "both"])
def test_headless_chromium_renders_the_report(pages: dict[str, Path], mode: str, tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
         pages[mode].resolve().as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert _png_size(shot) == (1200, 900)
    assert shot.stat().st_size > 20_000, "the screenshot looks blank"
    problems = [line for line in proc.stderr.splitlines()
                if re.search(r"Uncaught|Failed to load|net::ERR_|CONSOLE", line)]
    assert problems == []


def test_svg_writer() -> None:
    assert nice_ceiling(0) == (1.0, 0.25)
    assert nice_ceiling(7.3) == (8.0, 2.0)
    assert nice_ceiling(126) == (150.0, 50.0)
    chart = bar_chart("a & b", ["11-01", "11-02"], [Series("x<y", (Decimal("1.5"), Decimal(0))),
                                                    Series("z", (Decimal("0.25"), Decimal(2)))],
                      currency="EUR", stacked=True)
    root = ET.fromstring(chart)
    titles = [el.text for el in root.iter("{http://www.w3.org/2000/svg}title")]
    assert titles == ["11-01 · x<y: 1.50 EUR", "11-01 · z: 0.25 EUR", "11-02 · z: 2.00 EUR"]
    side = breakdown_chart("by member", ["shop/web", "ops/web"],
                           [Series("instance-hours", (Decimal(3), Decimal(1))),
                            Series("measured", (Decimal(2), Decimal("0.5")))], currency="USD")
    texts = [el.text for el in ET.fromstring(side).iter("{http://www.w3.org/2000/svg}text")]
    assert "3.00 USD" in texts and "0.50 USD" in texts and "measured" in texts
