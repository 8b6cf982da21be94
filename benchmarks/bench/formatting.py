"""How the benchmark tables print a number (compare.py's summary and report.py's tables)."""


def number(value) -> str:
    """A table cell: – for missing, thousands separated from 1,000, three significant digits below 10."""
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
