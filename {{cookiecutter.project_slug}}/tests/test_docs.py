"""The README and the docs/ pages hold together: every relative link reaches a file, a
link's #anchor a heading of that file (named as GitHub names headings), every page is
reachable from the README, and the README stays a guide read in one sitting."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
PAGES = [README, *sorted((PROJECT / "docs").glob("*.md"))]
README_MAX_LINES = 250
# [text](target) and ![alt](target), an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def outside_code_blocks(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `# comment` in a bash block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """The #anchors of a page's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading suffixed -1, -2, ... (GitHub's rule)."""
    slugs: set[str] = set()
    seen: dict[str, int] = {}
    for line in outside_code_blocks(page.read_text()):
        if match := HEADING.match(line):
            title = match.group(1).replace("`", "").strip().lower()
            slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            slugs.add(f"{slug}-{count}" if count else slug)
    return slugs


def links(page: Path) -> list[str]:
    """Relative link targets of a page, outside code blocks and inline code."""
    found = []
    for line in outside_code_blocks(page.read_text()):
        found += LINK.findall(re.sub(r"`[^`]*`", "", line))
    return [target for target in found if not SCHEME.match(target)]


def test_every_relative_link_reaches_a_file_and_its_heading():
    broken = []
    for page in PAGES:
        for target in links(page):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(PROJECT)}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(PROJECT)}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_reachable_from_the_readme():
    linked = {(PROJECT / target.partition("#")[0]).resolve() for target in links(README)}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_the_readme_is_a_short_guide():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines: move reference material to docs/"
    )
