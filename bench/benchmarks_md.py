"""The one writer of BENCHMARKS.md that every bench script shares.

Each benchmark owns one ``## <Section>`` of the file and rewrites only that section, so scripts can run in any
order (or alone) without clobbering each other's figures.
"""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_section(section: str, text: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the section under heading ``section`` with ``text`` (which starts with that heading), or append it."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    body = text.rstrip("\n") + "\n"
    start = doc.find(section + "\n")
    if start == -1:
        doc = doc.rstrip("\n") + "\n\n" + body
    else:
        end = doc.find("\n## ", start + len(section))
        rest = doc[end + 1 :] if end != -1 else ""
        doc = doc[:start] + body + ("\n" + rest if rest else "")
    path.write_text(doc)
