"""Exercises of the chapter "Rotation and augmentation" (:ref:`ch-rotation`).

Oracles: ``torch.rot90`` on images whose pixels carry their own index, and the orbits of
the pixel positions of a kernel under it, found by brute force.
"""

from __future__ import annotations

import torch

from dlmath._book.exercises import Exercise, Slip, register

CHAPTER = "ch-rotation"


def _rot90_row(n: int, i: int, j: int) -> int | None:
    if i >= n or j >= n:
        return None
    index = torch.arange(n * n).reshape(n, n)
    (r, _), = (torch.rot90(index, 1, dims=(0, 1)) == i * n + j).nonzero().tolist()
    return r


def _invariant_kernel_params(k: int) -> int:
    """Number of orbits of the k x k positions under rotations by 90 degrees."""
    index = torch.arange(k * k).reshape(k, k)
    images = [torch.rot90(index, t, dims=(0, 1)) for t in range(4)]
    orbits = {frozenset(int(img.flatten()[p]) for img in images) for p in range(k * k)}
    return len(orbits)


_X = "torch.arange(1.0, 10.0).reshape(3, 3)"

register(Exercise(
    id="rot90-row", chapter=CHAPTER, title="Where a pixel goes",
    statement="torch.rot90(x, 1) rotates an n x n image by 90 degrees counterclockwise. Pixel "
              "x[i, j] lands in column i; in which row (counting from 0)?",
    kind="formula", solution="n - 1 - j", oracle=_rot90_row,
    grid={"n": range(1, 7), "i": range(0, 6), "j": range(0, 6)},
    slips=(
        Slip("n - j", "Rows are counted from 0, so the last row is n - 1"),
        Slip("j", "This is the transpose (a reflection), not a rotation"),
    )))

register(Exercise(
    id="rot90-matrix", chapter=CHAPTER, title="Rotating a small image",
    statement="Rotate the 3x3 image [[1, 2, 3], [4, 5, 6], [7, 8, 9]] by 90 degrees "
              "counterclockwise and write the result.",
    kind="tensor", solution=f"data.rotate({_X}[None, None], 90)[0, 0]",
    oracle=lambda: torch.rot90(torch.arange(1.0, 10.0).reshape(3, 3), 1, dims=(0, 1)),
    atol=1e-5,
    slips=(
        Slip(f"torch.rot90({_X}, -1, dims=(0, 1))",
             "This is the clockwise rotation; counterclockwise, the top-right corner (3) "
             "moves to the top left"),
    )))

register(Exercise(
    id="c4-kernel-params", chapter=CHAPTER, title="A kernel that rotations do not change",
    statement="How many free parameters has a k x k kernel that equals its own rotation by 90 "
              "degrees?",
    kind="formula", solution="ceiling(k**2/4)", oracle=_invariant_kernel_params,
    grid={"k": range(1, 10)},
    slips=(
        Slip("k**2/4", "Without the ceiling: for odd k the centre is a position of its own, "
                       "and the other k^2 - 1 fall into groups of four"),
        Slip("(k**2 + 3)/4", "This holds for odd k only; for even k every position is in a "
                             "group of four"),
    )))
