"""The API's JSON renderer: orjson, byte for byte what DRF's ``JSONRenderer`` writes for the same data.

DRF's renderer is ``json.dumps`` with its encoder: on a page of 500 lots it was a fifth of the request (B1).
orjson writes the same compact UTF-8 text, keys in insertion order, times as DRF does (``Z`` for a zero
offset). What orjson would write differently goes back to DRF's renderer: an indented response
(``Accept: application/json; indent=4``), a number orjson refuses (beyond 64 bits) and a Decimal whose float
it would spell otherwise (below 1e-4: ``1e-05`` there, ``0.00001`` here) or would not refuse (NaN). No model
has a float field; the payloads carry decimals as text."""

from __future__ import annotations

import decimal

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_LINE_SEPARATORS = ("\u2028".encode(), "\u2029".encode())
_drf_default = JSONEncoder().default


class _NotLikeDrf(TypeError):
    """Raised from inside orjson when its text for a value would differ from DRF's: render with DRF."""


def _default(value):
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        if not value.is_finite() or (as_float and abs(as_float) < 1e-4):
            raise _NotLikeDrf
        return as_float
    return _drf_default(value)


class OrjsonRenderer(JSONRenderer):
    """``application/json`` by orjson; the same bytes as DRF's JSONRenderer (tested value by value)."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if (self.get_indent(accepted_media_type, renderer_context or {}) is not None
                or not (self.compact and not self.ensure_ascii and self.strict)):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            text = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF: U+2028 and U+2029 escaped, so the JSON is also valid JavaScript.
        if b"\xe2\x80" in text:
            text = text.replace(_LINE_SEPARATORS[0], b"\\u2028").replace(_LINE_SEPARATORS[1], b"\\u2029")
        return text
