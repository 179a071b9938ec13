"""Exercises of the chapter "Convolution as a matrix" (:ref:`ch-conv-matrix`).

Oracle: the matrix of a convolution read off PyTorch column by column, as the responses of
``torch.nn.functional.conv2d`` to the unit images (``M e_j = vec(conv(e_j))``), with a
kernel whose weights are distinct so that each entry names its weight.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-conv-matrix"


def _matrix(weight: torch.Tensor, height: int, width: int, stride: int = 1,
            padding: int = 0) -> torch.Tensor:
    """M with vec(z) = M vec(x), both taken row by row, from the unit images."""
    kh, kw = weight.shape
    units = torch.eye(height * width, dtype=torch.float64).reshape(-1, 1, height, width)
    out = F.conv2d(units, weight.reshape(1, 1, kh, kw).double(), stride=stride,
                   padding=padding)                     # (HW, 1, H', W'): column j is conv(e_j)
    return out.reshape(height * width, -1).T


@lru_cache(maxsize=None)
def _matrix_3x3(width: int, stride: int) -> torch.Tensor:
    return _matrix(torch.arange(1.0, 10.0).reshape(3, 3), width, width, stride)


def _column(W: int, s: int, u: int, v: int, a: int, b: int) -> int | None:
    """The column of row (u, v) that holds w[a, b]; None if (u, v) is not an output."""
    side = (W - 3) // s + 1
    if u >= side or v >= side:
        return None
    row = _matrix_3x3(W, s)[u * side + v]
    (j,) = (row == 3 * a + b + 1).nonzero().flatten().tolist()
    return j


register(Exercise(
    id="toeplitz-column", chapter=CHAPTER, title="Where a weight sits in a strided matrix",
    statement="A 3x3 kernel w slides with stride s over a W x W image (no padding), and vec "
              "reads images row by row. In the row of M for output (u, v), which column holds "
              "w[a, b] (indices from 0)?",
    kind="formula", solution="(s*u + a)*W + s*v + b", oracle=_column,
    grid={"W": range(3, 8), "s": range(1, 4), "u": range(0, 4), "v": range(0, 4),
          "a": range(0, 3), "b": range(0, 3)},
    slips=(
        Slip("(u + a)*W + v + b",
             "This leaves out the stride: output (u, v) reads the window whose corner is "
             "input pixel (su, sv)"),
        Slip("(s*v + b)*W + s*u + a",
             "This is the column for vec taken column by column (pixel (r, c) at c H + r); "
             "row by row, pixel (r, c) is entry r W + c"),
        Slip("(s*u + a)*W + s*v + b + 1", "Indices here start at 0, as in PyTorch"),
    )))

_W22 = "torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)"

register(Exercise(
    id="conv-matrix-2x2", chapter=CHAPTER, title="A small convolution matrix",
    statement="Write the matrix M with vec(z) = M vec(x) for the kernel [[1, 2], [3, 4]] "
              "applied without padding, stride 1, to a 3x3 image, vec reading row by row.",
    kind="tensor", solution=f"toeplitz.conv_matrix({_W22}, (1, 3, 3))",
    oracle=lambda: _matrix(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 3, 3),
    slips=(
        Slip(f"toeplitz.conv_matrix({_W22}, (1, 3, 3), order='col')",
             "This is the matrix for vec taken column by column, the order report 000 uses "
             "(Q1b): rows and columns are both permuted"),
    )))

register(Exercise(
    id="conv-matrix-nnz", chapter=CHAPTER, title="Non-zero entries with padding",
    statement="A 3x3 kernel with no zero weight is applied with zero padding 1 and stride 1 "
              "to an 8x8 image. How many entries of its 64 x 64 matrix M are non-zero?",
    kind="number",
    solution="int((toeplitz.conv_matrix(torch.ones(1, 1, 3, 3), (1, 8, 8), padding=1) != 0)"
             ".sum())",
    oracle=lambda: int((_matrix(torch.ones(3, 3), 8, 8, padding=1) != 0).sum()),
    slips=(
        Slip(576, "This counts nine weights in every row; at the border some of them fall on "
                  "the padding, which is not part of x and has no column in M"),
        Slip(4096, "This is the number of all entries; each row has at most nine non-zero"),
    )))
