"""The landing page's grid of chapter cards: each with a figure of its chapter and its question.

The directive ``{chapter-cards}`` (used in ``book/index.md``) lays out one sphinx-design card
per chapter in :data:`CARDS`: the chapter's title (from the chapter itself) links to it, the
question it answers is written below, and the picture is one of the chapter's own figures,
as the chapter's execution glued it (myst-nb's ``<builddir>/jupyter_execute/<doc>.glue.json``).
The pictures are written to ``_static/cards/`` of the site at the end of every build, so a
card never shows a figure older than its chapter.  A card whose figure is missing (a renamed
glue key) is a warning, and the strict build fails.
"""

from __future__ import annotations

import json
from pathlib import Path

#: chapter -> (glue key of its card figure, the question it answers, in one sentence)
CARDS: dict[str, tuple[str, str]] = {
    "01_conv_arithmetic": ("fig-ca-windows",
                           "How large is a convolution's output, and which inputs does it drop?"),
    "02_conv_matrix": ("fig-cm-band", "What does a convolution look like as a matrix?"),
    "03_counting_parameters": ("fig-cp-size",
                               "How many parameters, and how large a receptive field, has a network?"),
    "04_why_convolutions": ("wc-fig-sharing",
                            "What do weight sharing and locality buy over a dense layer?"),
    "05_softmax": ("fig-sm-saturation",
                   "What are the softmax's Jacobian and Hessian, and when does it saturate?"),
    "06_mlp_backprop": ("fig-mlp-gradients",
                        "How does backpropagation compute a network's gradients by hand?"),
    "07_hopfield_attention": ("fig-hf-landscape",
                              "How is attention one update of a modern Hopfield network?"),
    "08_graphs": ("gr-fig-smoothing", "What does a graph convolution do to signals on a graph?"),
    "09_training_cnns": ("fig-tc-sweep",
                         "What do the learning rate and batch norm change in training a CNN?"),
    "10_regularisation": ("fig-reg-loss",
                          "How do dropout, weight decay and augmentation fight overfitting?"),
    "11_padding_position": ("fig-pp-data",
                            "How can padding let a convolutional network know where it is?"),
    "12_rotation": ("fig-rot-curves",
                    "How does rotating the digits hurt a CNN, and what does training on "
                    "rotated digits change?"),
    "13_transformers": ("fig-tf-cost",
                        "What does attention cost, and what makes a small GPT work?"),
    "14_seq2seq": ("fig-s2s-attention",
                   "What does attention buy an encoder-decoder that spells words from sounds?"),
}

CARD_DIR = "_static/cards"


def _glue_data(app, docname: str) -> dict:
    path = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.glue.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def card_markdown(entries: list[tuple[str, str, str, bool]]) -> str:
    """MyST for the grid: (docname, title, question, has_picture) per card."""
    out = ["::::{grid} 1 2 2 3", ":gutter: 3", ":class-container: chapter-cards", ""]
    for docname, title, question, picture in entries:
        name = docname.rsplit("/", 1)[-1]
        out += [f":::{{grid-item-card}} {title}", f":link: {docname}", ":link-type: doc", ""]
        if picture:
            out += [f'<img class="chapter-card-figure" src="{CARD_DIR}/{name}.svg" '
                    f'alt="A figure of the chapter {title}">', ""]
        out += [question, ":::", ""]
    out.append("::::")
    return "\n".join(out)


def setup(app):
    from sphinx.util import logging
    from sphinx.util.docutils import SphinxDirective

    logger = logging.getLogger(__name__)

    class ChapterCards(SphinxDirective):
        """One card per chapter of :data:`CARDS` that is part of this build."""

        def run(self):
            entries = []
            for name, (_key, question) in CARDS.items():
                doc = f"chapters/{name}"
                if doc not in self.env.found_docs:
                    continue
                source = Path(self.env.srcdir) / f"{doc}.md"
                title = next((ln[2:].strip() for ln in source.read_text(encoding="utf-8")
                              .splitlines() if ln.startswith("# ")), name)
                self.env.note_dependency(str(source))
                entries.append((doc, title, question, True))
            if not entries:          # a partial build without numbered chapters
                return []
            return self.parse_text_to_nodes(card_markdown(entries))

    def write_pictures(app, exception):
        if exception is not None or app.builder.format != "html":
            return
        if app.config.nb_execution_mode == "off":
            return
        folder = Path(app.outdir) / CARD_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, (key, _question) in CARDS.items():
            doc = f"chapters/{name}"
            if doc not in app.env.found_docs:
                continue
            data = _glue_data(app, doc).get(key, {}).get("data", {})
            svg = data.get("image/svg+xml")
            if svg is None:
                logger.warning(f"the card of {doc} wants the figure glued as {key!r}, which the "
                               f"chapter does not glue as SVG (book/_ext/dlmath_cards.py)",
                               type="dlmath", subtype="cards")
                continue
            (folder / f"{name}.svg").write_text(svg, encoding="utf-8")

    app.add_directive("chapter-cards", ChapterCards)
    app.connect("build-finished", write_pictures)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
