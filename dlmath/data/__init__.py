"""Data sets of the book: generated, or shipped inside a package; never downloaded.

The functions live in submodules by kind (``toy``: 2-D classification sets; ``handwritten``:
scikit-learn's bundled handwritten digits; ``loaders``: MNIST/CIFAR-10 files from a local
directory; ``boxes``: the red/green box images; ``words``: the CMU pronouncing dictionary)
and are re-exported here on first use, so ``dlmath.data.digits()`` works directly.  No
submodule is named like a function it exports: importing a submodule sets the package
attribute of that name, which would otherwise hide the function.
"""

from __future__ import annotations

from dlmath._lazy import lazy_exports

_SUBMODULES = ("toy", "handwritten", "loaders", "boxes", "words", "tensors")

__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULES)
