"""The README and the docs/ pages hold together: every relative link reaches a file, a
link's #anchor a heading of that file (named as GitHub names headings), every page is
reachable from the README, and the README stays a guide read in one sitting.

Also the harness that runs the docs' commands as written (the template's tests use it on
a baked project): `bash_blocks` and `status_steps`, which splits a block at each
`git status --short  # prints ...` line into the commands before it and what the doc
says git prints then."""

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
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", flags=re.S | re.M)
# `git status --short   # prints nothing: why` or `... # prints `M  dvc.lock`, `?? x``.
STATUS = re.compile(r"^git status --short\s*(?:#\s*(?P<comment>.*))?$")


def said_to_print(comment: str) -> list[str] | None:
    """What a `git status --short` line's comment says it prints, or None when it does not
    say: "prints nothing" is no line, "prints `XY path`, ..." those lines."""
    if comment.startswith("prints nothing"):
        return []
    printed = re.findall(r"`([^`]*)`", comment)
    return printed if comment.startswith("prints ") and printed else None


def bash_blocks(page: Path) -> list[str]:
    """The page's ```bash blocks, in order, as written."""
    return BASH_BLOCK.findall(page.read_text())


def status_steps(block: str) -> list[tuple[str, list[str] | None]]:
    """The block as (commands, the lines `git status --short` prints after them, as the
    doc says) steps: each `git status --short  # prints ...` line ends one ("nothing" is
    no line; else each `quoted` line). Commands after the last such line: None."""
    steps: list[tuple[str, list[str] | None]] = []
    commands: list[str] = []
    for line in block.splitlines():
        match = STATUS.match(line.strip())
        if match is None:
            commands.append(line)
            continue
        steps.append(("\n".join(commands), said_to_print(match.group("comment") or "")))
        commands = []
    if any(c.strip() for c in commands):
        steps.append(("\n".join(commands), None))
    return steps


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


def test_every_git_status_in_the_docs_says_what_it_prints():
    """A reader compares their `git status` with the doc's; the template's tests run the
    serving docs and compare git's with it (status_steps)."""
    unsaid = []
    for page in PAGES:
        for block in bash_blocks(page):
            for line in block.splitlines():
                match = STATUS.match(line.strip())
                if match and said_to_print(match.group("comment") or "") is None:
                    unsaid.append(f"{page.relative_to(PROJECT)}: {line.strip()}")
    assert not unsaid, "say what it prints (# prints nothing, or `XY path`):\n" + "\n".join(unsaid)


def test_status_steps_split_a_block_at_each_git_status():
    block = (
        "make a\ngit status --short   # prints nothing: ignored\n"
        "make b\ngit status --short   # prints `M  dvc.lock`, `?? b`\nmake c\n"
    )
    assert status_steps(block) == [
        ("make a", []),
        ("make b", ["M  dvc.lock", "?? b"]),
        ("make c", None),
    ]
