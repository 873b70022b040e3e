"""Font colour classes for the blue-input / black-formula / green-link convention.

A font colour in openpyxl is None (the default: theme 1, dark 1, black), an ARGB `rgb`, an `indexed` entry of
the legacy palette, or a `theme` slot plus a `tint` (on a theme colour `.rgb` is an error *string*, so the kind is
read from `.type`). Colours are classified by hue, so 0000FF, 1F497D and a tinted accent all count as blue.
"""

from __future__ import annotations

import colorsys
import re
from typing import Any, Literal

from openpyxl.styles.colors import COLOR_INDEX

ColourClass = Literal["black", "blue", "green", "other"]

# Office's default theme (2013+): lt1, dk1, lt2, dk2, accent1..6, hlink, folHlink in theme-index order.
OFFICE_THEME = ("FFFFFF", "000000", "E7E6E6", "44546A", "4472C4", "ED7D31", "A5A5A5", "FFC000", "5B9BD5",
                "70AD47", "0563C1", "954F72")
_SCHEME_ORDER = ("lt1", "dk1", "lt2", "dk2", "accent1", "accent2", "accent3", "accent4", "accent5", "accent6",
                 "hlink", "folHlink")
_SLOT = re.compile(r"<(?:\w+:)?(dk1|lt1|dk2|lt2|accent[1-6]|hlink|folHlink)>(.*?)</(?:\w+:)?\1>", re.S)
_SRGB = re.compile(r"srgbClr\s+val=\"([0-9A-Fa-f]{6})\"")
_SYS = re.compile(r"sysClr[^>]*lastClr=\"([0-9A-Fa-f]{6})\"")


def theme_palette(loaded_theme: bytes | str | None) -> tuple[str, ...]:
    """The 12 theme colours in theme-index order (0 = lt1, 1 = dk1, ...) from `wb.loaded_theme`, else Office's."""
    if not loaded_theme:
        return OFFICE_THEME
    text = loaded_theme.decode("utf-8", "replace") if isinstance(loaded_theme, bytes) else loaded_theme
    found: dict[str, str] = {}
    for slot, body in _SLOT.findall(text):
        m = _SRGB.search(body) or _SYS.search(body)
        if m and slot not in found:
            found[slot] = m.group(1).upper()
    return tuple(found.get(s, OFFICE_THEME[i]) for i, s in enumerate(_SCHEME_ORDER))


def apply_tint(rgb: str, tint: float) -> str:
    """Excel's tint: scale HLS lightness toward black (tint < 0) or white (tint > 0)."""
    if not tint:
        return rgb
    r, g, b = (int(rgb[i:i + 2], 16) / 255 for i in (0, 2, 4))
    h, lum, s = colorsys.rgb_to_hls(r, g, b)
    lum = lum * (1 + tint) if tint < 0 else lum * (1 - tint) + tint
    r, g, b = colorsys.hls_to_rgb(h, max(0.0, min(1.0, lum)), s)
    return "".join(f"{round(x * 255):02X}" for x in (r, g, b))


def font_rgb(color: Any, palette: tuple[str, ...] = OFFICE_THEME) -> str:
    """The RGB hex ('0000FF') a font colour shows; the default and 'auto' are black."""
    if color is None:
        return palette[1]
    kind = getattr(color, "type", None)
    if kind == "rgb":
        value = color.rgb if isinstance(color.rgb, str) else ""
        return value[-6:].upper() if re.fullmatch(r"[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?", value) else palette[1]
    if kind == "indexed":
        idx = color.indexed
        if isinstance(idx, int) and 0 <= idx < len(COLOR_INDEX):
            return COLOR_INDEX[idx][-6:].upper()
        return palette[1]  # 64: system foreground
    if kind == "theme":
        idx = color.theme if isinstance(color.theme, int) else 1
        base = palette[idx] if 0 <= idx < len(palette) else palette[1]
        return apply_tint(base, float(color.tint or 0.0))
    return palette[1]


def classify_rgb(rgb: str) -> ColourClass:
    """black if HSV value < 0.25; other if near white (HLS lightness > 0.85); else blue (hue 190-260) or green
    (80-170) at HLS saturation >= 0.4; else other."""
    r, g, b = (int(rgb[i:i + 2], 16) / 255 for i in (0, 2, 4))
    if max(r, g, b) < 0.25:
        return "black"
    h, lum, s = colorsys.rgb_to_hls(r, g, b)
    if lum > 0.85:
        return "other"  # a near-white wash (a strongly tinted accent) is unreadable as a font, whatever its hue
    hue = h * 360
    if s >= 0.4 and 190 <= hue <= 260:
        return "blue"
    if s >= 0.4 and 80 <= hue <= 170:
        return "green"
    return "other"


def classify_font(font: Any, palette: tuple[str, ...] = OFFICE_THEME) -> ColourClass:
    """The colour class of an openpyxl Font (None counts as the default black)."""
    return classify_rgb(font_rgb(getattr(font, "color", None), palette))
