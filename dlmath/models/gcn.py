"""Graph convolution (Kipf and Welling 2017): a layer and a two-layer network.

Scope: :class:`GraphConv` computes :math:`\\hat A X W (+ b)` for a normalised adjacency
matrix :math:`\\hat A` (:func:`dlmath.graphs.gcn_normalized_adjacency`); :class:`GCN` stacks
two of them with a ReLU between.  The mathematics (adjacency, Laplacians, smoothing) is in
:mod:`dlmath.graphs`.  Chapter: :ref:`ch-graphs`.
"""

from __future__ import annotations

import torch

from dlmath._validate import check_bool, check_entries, check_int, check_number

__all__ = ["GraphConv", "GCN"]


class GraphConv(torch.nn.Module):
    r"""One graph convolution :math:`H = \hat A X W + b`.

    Explanation
    -----------
    Every node mixes the features of itself and its neighbours with the weights of
    :math:`\hat A` (:func:`~dlmath.graphs.gcn_normalized_adjacency`), then a linear map
    :math:`W` shared by all nodes is applied.  Permuting the nodes (rows of :math:`X`, rows
    and columns of :math:`\hat A`) permutes the output rows: the layer is permutation
    equivariant.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool

    Examples
    --------
    >>> from dlmath.graphs import adjacency_matrix, gcn_normalized_adjacency
    >>> layer = GraphConv(4, 2).double()
    >>> A_hat = gcn_normalized_adjacency(adjacency_matrix([(0, 1), (1, 2)], 3))
    >>> layer(torch.ones(3, 4, dtype=torch.float64), A_hat).shape
    torch.Size([3, 2])

    See Also
    --------
    GCN : two layers of it.

    References
    ----------
    Kipf and Welling (2017).  Chapter: :ref:`ch-graphs`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        check_int("in_features", in_features, 1)
        check_int("out_features", out_features, 1)
        check_entries(f"the weights of in_features x out_features = {in_features} x "
                      f"{out_features}", in_features * out_features)
        check_bool("bias", bias)
        self.linear = torch.nn.Linear(in_features, out_features, bias=False)
        torch.nn.init.xavier_uniform_(self.linear.weight)   # Glorot, as Kipf and Welling
        self.bias = torch.nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, X: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        if X.ndim != 2 or A_hat.shape != (X.shape[0], X.shape[0]):
            raise ValueError(f"X must be (n, in_features) and A_hat (n, n); got X "
                             f"{tuple(X.shape)} and A_hat {tuple(A_hat.shape)}")
        # H_vo = sum_u Â_vu sum_i X_ui W_io  (+ b_o)
        H = A_hat @ self.linear(X)                       # (n, out)
        return H + self.bias if self.bias is not None else H


class GCN(torch.nn.Module):
    r"""The two-layer GCN :math:`\hat A\,\mathrm{ReLU}(\hat A X W_0)\,W_1` (logits).

    Explanation
    -----------
    Softmax of the logits gives Kipf and Welling's class probabilities; the cross-entropy
    of the training (chapter :ref:`ch-graphs`) applies it.  Dropout is applied to the input
    of each layer during training.  :meth:`embed` returns the hidden representation
    :math:`\mathrm{ReLU}(\hat A X W_0)`.

    Parameters
    ----------
    in_features, hidden, out_features : int
    dropout : float
        Dropout probability in :math:`[0, 1)`.

    Examples
    --------
    >>> from dlmath.graphs import adjacency_matrix, gcn_normalized_adjacency
    >>> model = GCN(34, 16, 2).double()
    >>> A_hat = torch.eye(34, dtype=torch.float64)
    >>> model(torch.eye(34, dtype=torch.float64), A_hat).shape
    torch.Size([34, 2])

    See Also
    --------
    GraphConv

    References
    ----------
    Kipf and Welling (2017), equation (9).  Chapter: :ref:`ch-graphs`.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        dropout = check_number("dropout", dropout, interval="[0, 1)")
        for name, value in (("in_features", in_features), ("hidden", hidden),
                            ("out_features", out_features)):
            check_int(name, value, 1)
        check_entries(f"the weights of in_features x hidden = {in_features} x {hidden}",
                      in_features * hidden)
        check_entries(f"the weights of hidden x out_features = {hidden} x {out_features}",
                      hidden * out_features)
        self.conv1 = GraphConv(in_features, hidden)
        self.conv2 = GraphConv(hidden, out_features)
        self.dropout = torch.nn.Dropout(dropout)

    def embed(self, X: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        """The hidden layer ReLU(Â X W0), shape (n, hidden)."""
        return torch.relu(self.conv1(self.dropout(X), A_hat))

    def forward(self, X: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.dropout(self.embed(X, A_hat)), A_hat)   # (n, classes)
