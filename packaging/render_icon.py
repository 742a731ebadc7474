"""Render the SVG icon to a PNG with Qt's own SVG renderer (offscreen; no display needed).

Usage: python packaging/render_icon.py [SVG] [PNG] [SIZE]
Defaults: resources/icons/unlearn-studio.svg -> resources/icons/unlearn-studio.png, 256 px.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(svg: Path, png: Path, size: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"not a valid SVG: {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(png)):
        raise SystemExit(f"could not write {png}")
    print(f"{png} ({size}x{size})")


if __name__ == "__main__":
    args = sys.argv[1:]
    svg = Path(args[0]) if len(args) > 0 else ROOT / "resources/icons/unlearn-studio.svg"
    png = Path(args[1]) if len(args) > 1 else ROOT / "resources/icons/unlearn-studio.png"
    size = int(args[2]) if len(args) > 2 else 256
    render(svg, png, size)
