"""The temperature log drawn with its transport range (matplotlib, Agg: no display needed in a worker)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

from batches.shipping.temperature import Reading, is_outside


def temperature_chart_png(
    readings: Sequence[Reading],
    *,
    low_c: Decimal | None,
    high_c: Decimal | None,
    title: str,
    width_in: float = 7.0,
    height_in: float = 3.0,
    dpi: int = 150,
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure  # Figure, not pyplot: no global state shared between threads

    times = [r.at for r in readings]
    temperatures = [float(r.temperature_c) for r in readings]
    figure = Figure(figsize=(width_in, height_in), dpi=dpi)
    axes = figure.add_subplot()
    if low_c is not None and high_c is not None:
        axes.axhspan(float(low_c), float(high_c), color="#d8f0d8", label=f"range {low_c} to {high_c} °C")
    for limit in (low_c, high_c):
        if limit is not None:
            axes.axhline(float(limit), color="#2a7a2a", linewidth=0.8, linestyle="--")
    axes.plot(times, temperatures, color="#1f3b73", linewidth=1.2, label="logger")
    out = [(r.at, float(r.temperature_c)) for r in readings if is_outside(r.temperature_c, low_c, high_c)]
    if out:
        axes.scatter([t for t, _ in out], [v for _, v in out], color="#c0392b", s=10, zorder=3, label="outside")
    axes.set_title(title, fontsize=9)
    axes.set_ylabel("°C")
    axes.set_xlabel("UTC")
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %H:%M", tz=None))
    axes.tick_params(labelsize=7)
    axes.grid(True, linewidth=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
