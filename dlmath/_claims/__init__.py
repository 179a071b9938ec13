"""Claims of the source reports, one module per topic; see :mod:`dlmath.claims`."""
