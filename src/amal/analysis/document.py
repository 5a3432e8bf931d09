"""A tiny document model (headings, paragraphs, tables, figures) rendered to a self-contained HTML page
(figures as base64 data URIs) and to Markdown (figures as PNG files beside it)."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
p.note { color: #8a5a00; font-size: .92em; }
code { background: #f5f5f5; padding: 0 .2em; }
"""


@dataclass
class Figure:
    name: str  # file stem, unique within the report
    png: bytes
    caption: str


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append((f"h{level}", text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def note(self, text: str) -> None:
        self.blocks.append(("note", text))

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (head, rows)))

    def figure(self, fig: Figure) -> None:
        self.blocks.append(("figure", fig))

    def figures(self) -> list[Figure]:
        return [b for kind, b in self.blocks if kind == "figure"]  # type: ignore[misc]

    def to_html(self) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
               f"<title>{e(self.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
               f"<h1>{e(self.title)}</h1>"]
        for kind, b in self.blocks:
            if kind.startswith("h"):
                out.append(f"<{kind}>{e(str(b))}</{kind}>")
            elif kind == "p":
                out.append(f"<p>{e(str(b))}</p>")
            elif kind == "note":
                out.append(f'<p class="note">{e(str(b))}</p>')
            elif kind == "table":
                head, rows = b  # type: ignore[misc]
                out.append("<table>")
                out.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
                out.append("</table>")
            elif kind == "figure":
                assert isinstance(b, Figure)
                data = base64.b64encode(b.png).decode("ascii")
                out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(b.caption)}">'
                           f"<figcaption>{e(b.caption)}</figcaption></figure>")
        out += ["</body>", "</html>", ""]
        return "\n".join(out)

    def to_markdown(self, figure_paths: dict[str, str]) -> str:
        """``figure_paths``: figure name -> path relative to the Markdown file."""
        out = [f"# {_md(self.title)}", ""]
        for kind, b in self.blocks:
            if kind.startswith("h"):
                out += ["#" * int(kind[1:]) + " " + _md(str(b)), ""]
            elif kind == "p":
                out += [_md(str(b)), ""]
            elif kind == "note":
                out += [f"> {_md(str(b))}", ""]
            elif kind == "table":
                head, rows = b  # type: ignore[misc]
                out.append("| " + " | ".join(_cell(h) for h in head) + " |")
                out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
                out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "figure":
                assert isinstance(b, Figure)
                out += [f"![{_alt(b.caption)}]({figure_paths[b.name]})", "", f"*{_md(b.caption)}*", ""]
        return "\n".join(out)

    def write(self, out_dir: str, stem: str = "report") -> dict[str, str]:
        """Write ``<stem>.html``, ``<stem>.md`` and one ``<stem>-<figure>.png`` per figure into ``out_dir``."""
        os.makedirs(out_dir, exist_ok=True)
        rel: dict[str, str] = {}
        for fig in self.figures():
            fname = f"{stem}-{fig.name}.png"
            with open(os.path.join(out_dir, fname), "wb") as f:
                f.write(fig.png)
            rel[fig.name] = fname
        html_path = os.path.join(out_dir, f"{stem}.html")
        md_path = os.path.join(out_dir, f"{stem}.md")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(self.to_html())
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(self.to_markdown(rel))
        return {"html": html_path, "markdown": md_path}


def _md(text: str) -> str:
    return text.replace("\n", " ")


def _alt(text: str) -> str:
    return _md(text).replace("[", "(").replace("]", ")")


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|")
