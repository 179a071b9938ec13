"""The graphs chapter's experiment: a GCN trained on a few labelled nodes (full batch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from dlmath._validate import check_int, check_number, is_int, one_torch_thread
from dlmath.engine.hardware import device as _device
from dlmath.graphs import gcn_normalized_adjacency
from dlmath.models.gcn import GCN

__all__ = ["GCNResult", "train_gcn"]


@dataclass(frozen=True)
class GCNResult:
    """What :func:`train_gcn` returns.

    Attributes
    ----------
    model : GCN
        The trained model, in eval mode, on the CPU.
    losses : tuple of float
        Training loss (cross-entropy on the labelled nodes, with dropout) of each epoch,
        computed before that epoch's update.
    predictions : torch.Tensor, shape (n,)
        Predicted class of every node.
    accuracy : float
        Fraction of the *unlabelled* nodes whose prediction is right.
    embedding : torch.Tensor, shape (n, hidden)
        Hidden representation of every node.
    labelled : torch.Tensor, shape (n,), bool
        Which nodes' labels were used for training.
    """

    model: GCN
    losses: tuple[float, ...]
    predictions: torch.Tensor
    accuracy: float
    embedding: torch.Tensor
    labelled: torch.Tensor


def train_gcn(A: Any, features: Any, labels: Any, labelled: Sequence[int], *,
              hidden: int = 16, epochs: int = 200, lr: float = 0.01,
              weight_decay: float = 5e-4, dropout: float = 0.5, seed: int = 0,
              device: str | torch.device | None = None) -> GCNResult:
    r"""Train a two-layer :class:`GCN` semi-supervised: only the ``labelled`` nodes' labels.

    Explanation
    -----------
    Full-batch Adam on the cross-entropy of the labelled nodes, as in Kipf and Welling;
    every node's features take part in every forward pass, so the graph carries the labels
    to the unlabelled nodes.  Initialisation and dropout use torch's random state seeded
    with ``seed`` (the global state is restored afterwards) and computation is in float64,
    so a run is deterministic on a given device.  On the CPU it uses one thread: the
    matrices are tiny.  With an edgeless ``A`` (all zeros), :math:`\hat A = I` and the
    model is a two-layer MLP on the features alone: the baseline that shows what the graph
    adds.

    Parameters
    ----------
    A : array_like, shape (n, n)
        Symmetric adjacency without self-loops (weights allowed).
    features : array_like, shape (n, f)
    labels : array_like of int, shape (n,)
        Classes ``0, ..., C-1`` (the unlabelled nodes' labels are used only for accuracy).
    labelled : sequence of int
        The nodes whose labels are used for training; distinct, at least one.
    hidden, epochs : int
    lr, weight_decay, dropout : float
    seed : int
    device : str or torch.device, optional
        Default :func:`dlmath.device`.

    Returns
    -------
    GCNResult

    Raises
    ------
    ValueError
        For inconsistent shapes, negative labels, repeated or out-of-range labelled nodes,
        no unlabelled node left to evaluate, or a non-positive ``lr``.

    Examples
    --------
    >>> from dlmath.graphs import adjacency_matrix
    >>> A = adjacency_matrix([(0, 1), (1, 2), (3, 4), (4, 5), (2, 3)], 6)
    >>> r = train_gcn(A, torch.eye(6), [0, 0, 0, 1, 1, 1], [0, 5], epochs=100, device="cpu")
    >>> r.predictions.tolist(), r.accuracy
    ([0, 0, 0, 1, 1, 1], 1.0)

    See Also
    --------
    GCN, gcn_normalized_adjacency

    References
    ----------
    Kipf and Welling (2017), section 3.  Chapter: :ref:`ch-graphs`.
    """
    # float64 throughout, like the model (a float32 tensor A would otherwise stay float32)
    A_hat = gcn_normalized_adjacency(A.double() if isinstance(A, torch.Tensor) else A)
    n = A_hat.shape[0]
    X = torch.as_tensor(features).to(torch.float64)
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"features must have shape (n, f) with n = {n}, got {tuple(X.shape)}")
    y = torch.as_tensor(labels)
    if y.shape != (n,) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"labels must be {n} ints, got dtype {y.dtype} shape {tuple(y.shape)}")
    y = y.long()
    if int(y.min()) < 0:
        raise ValueError(f"labels must be >= 0, got {int(y.min())}")
    num_classes = int(y.max()) + 1
    idx = list(labelled)
    if not idx or not all(is_int(i) and 0 <= i < n for i in idx) or len(set(idx)) != len(idx):
        raise ValueError(f"labelled must be distinct node indices in 0..{n - 1}, got {idx}")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    if bool(mask.all()):
        raise ValueError("labelled covers every node: no unlabelled node to evaluate")
    for name, v in (("hidden", hidden), ("epochs", epochs), ("seed", seed)):
        check_int(name, v, 1 if name != "seed" else 0)
    check_number("lr", lr, positive=True)
    check_number("weight_decay", weight_decay, nonnegative=True)

    dev = _device(device)
    X_d, A_d, y_d, m_d = X.to(dev), A_hat.to(dev), y.to(dev), mask.to(dev)
    losses = []
    # seeded initialisation and dropout; the global random state is restored afterwards
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []), \
            one_torch_thread():
        torch.manual_seed(seed)
        model = GCN(X.shape[1], hidden, num_classes, dropout).double().to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        model.train()
        for _ in range(epochs):
            opt.zero_grad()
            logits = model(X_d, A_d)                                 # (n, C)
            loss = torch.nn.functional.cross_entropy(logits[m_d], y_d[m_d])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        model = model.cpu()
        with torch.no_grad():
            logits = model(X, A_hat)                                 # (n, C)
            emb = model.embed(X, A_hat)                              # (n, hidden)
    pred = logits.argmax(dim=1)
    acc = float((pred[~mask] == y[~mask]).double().mean())
    return GCNResult(model=model, losses=tuple(losses), predictions=pred, accuracy=acc,
                     embedding=emb, labelled=mask)
