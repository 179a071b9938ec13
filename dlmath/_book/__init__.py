"""Code that only the book needs: the claims registry, chapter experiments, rendering, plotting.

Private: the chapters import it (``from dlmath._book import claims``); the public API does not
export it and may change it without notice.
"""
