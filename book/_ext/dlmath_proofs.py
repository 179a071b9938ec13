"""A readable index of the book's definitions, theorems and propositions.

sphinx-proof's own index (``prf-prf.html``) lists the labels (``thm-ca-output-size``); the
directive ``{proof-list}`` (``book/appendix/proofs.md``) lists, chapter by chapter, each
labelled definition, theorem, proposition and lemma by its title, linked with ``{prf:ref}``
(so a removed label fails the strict build).  It reads the chapters' sources and is re-read
whenever one of them changes.
"""

from __future__ import annotations

import re
from pathlib import Path

KINDS = ("definition", "theorem", "proposition", "lemma", "corollary")
_DIRECTIVE = re.compile(r"^(?:```|:::+)\{prf:(\w+)\}[ \t]*([^\n]*)\n((?::[\w-]+:[^\n]*\n)*)",
                        re.M)


def statements(source: str) -> list[tuple[str, str, str]]:
    """(kind, title, label) of each labelled statement of a chapter's source, in order."""
    out = []
    for kind, title, options in _DIRECTIVE.findall(source):
        label = re.search(r"^:label:\s*(\S+)", options, re.M)
        if kind in KINDS and label:
            out.append((kind, title.strip() or label.group(1), label.group(1)))
    return out


def proof_list_markdown(srcdir: Path, docs=None) -> tuple[str, list[Path]]:
    """The list as MyST, and the chapter files it was read from (``docs``: those in the build)."""
    lines, files = [], []
    for path in sorted((Path(srcdir) / "chapters").glob("[0-9][0-9]_*.md")):
        if docs is not None and f"chapters/{path.stem}" not in docs:
            continue
        text = path.read_text(encoding="utf-8")
        found = statements(text)
        if not found:
            continue
        files.append(path)
        label = re.search(r"^\(([\w-]+)\)=\s*\n#\s", text, re.M)
        lines += ["", f"**{{ref}}`{label.group(1)}`**" if label else f"**{path.stem}**", ""]
        for kind, title, ref in found:
            lines.append(f"- {kind.capitalize()}: {{prf:ref}}`{title} <{ref}>`")
    return "\n".join(lines), files


def setup(app):
    from sphinx.util.docutils import SphinxDirective

    class ProofList(SphinxDirective):
        def run(self):
            text, files = proof_list_markdown(Path(self.env.srcdir), self.env.found_docs)
            for f in files:
                self.env.note_dependency(str(f))
            return self.parse_text_to_nodes(text)

    app.add_directive("proof-list", ProofList)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
