"""A small, safe markdown renderer for tour notes on the static page (notes are user text: HTML is escaped).

Paragraphs, `#` headings, `-`/`*` and `1.` lists, fenced code, and inline `code`, **bold**, *italic* and
[links](https://...) (http, https and mailto only). Everything else is shown as the text it is.
"""

from __future__ import annotations

import html
import re

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(((?:https?://|mailto:)[^)\s\"'<>]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")


def render_markdown(text: str) -> str:
    """HTML for `text` (markdown); no tag of the input survives (it is escaped before any markup is added)."""
    blocks, lines, fenced = [], [], None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip().startswith("```"):
            if fenced is None:
                blocks.append(render_block(lines))
                lines, fenced = [], []
            else:
                blocks.append(f"<pre><code>{html.escape(chr(10).join(fenced))}</code></pre>")
                fenced = None
        elif fenced is not None:
            fenced.append(line)
        elif not line.strip():
            blocks.append(render_block(lines))
            lines = []
        else:
            lines.append(line)
    if fenced is not None:  # an unclosed fence: still shown as code
        blocks.append(f"<pre><code>{html.escape(chr(10).join(fenced))}</code></pre>")
    blocks.append(render_block(lines))
    return "\n".join(block for block in blocks if block)


def render_block(lines: list[str]) -> str:
    """One block of non-empty lines: headings and list items each on their own, the rest one paragraph."""
    out, paragraph, items, list_tag = [], [], [], ""

    def flush() -> None:
        nonlocal paragraph, items, list_tag
        if paragraph:
            out.append(f"<p>{render_inline(' '.join(paragraph))}</p>")
        if items:
            out.append(f"<{list_tag}>" + "".join(f"<li>{render_inline(i)}</li>" for i in items) + f"</{list_tag}>")
        paragraph, items, list_tag = [], [], ""

    for line in lines:
        heading, bullet, numbered = _HEADING.match(line), _BULLET.match(line), _NUMBERED.match(line)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 2, 6)  # the stop's own heading is h2
            out.append(f"<h{level}>{render_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            tag = "ul" if bullet else "ol"
            if paragraph or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append((bullet or numbered).group(1))
        elif items:
            items[-1] += " " + line.strip()  # a list item's continuation line
        else:
            paragraph.append(line.strip())
    flush()
    return "\n".join(out)


def render_inline(text: str) -> str:
    """Escape `text`, then add code, links, bold and italics (code spans keep their text as written)."""
    codes: list[str] = []

    def keep_code(match: re.Match) -> str:
        codes.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    # The URL is escaped already (quote characters cannot be in it: _LINK leaves them out).
    escaped = _INLINE_CODE.sub(keep_code, html.escape(text, quote=False))
    escaped = _LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noopener">{m.group(1)}</a>', escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    escaped = _ITALIC.sub(r"<em>\1</em>", escaped)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], escaped)
