"""Model definitions: the networks the book trains and analyses, as ``torch.nn`` modules.

``zoo`` (the reports' CNNs, VGG-16, MLPs), ``gpt`` (a small character-level GPT), ``seq2seq``
(an LSTM encoder-decoder with or without attention, and the speller built on it), ``gcn``
(graph convolution), ``position`` (the strided CNNs with six kinds of padding) and ``hooks``
(the output of one named layer).  Every public name is re-exported here on first use:
``from dlmath.models import GPT, three_block_cnn``.
"""

from __future__ import annotations

from dlmath._lazy import lazy_exports

_SUBMODULES = ("zoo", "gpt", "seq2seq", "gcn", "position", "hooks")

__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES)
