"""The map of the questions: every question of the five source reports, and where the book answers it.

The book answers five homework reports (``shared/sources/000_*.txt`` to ``004_*.txt``). This
registry, beside the claims registry (:mod:`dlmath._book.claims`), lists each of their
questions once: the report, the number the report gives it, the question in the book's own
words, whether the book answers it (``answered``, ``partly``, ``not covered``), the sections
that answer it, and for the last two statuses what is missing. The appendix "A map of the
questions" is generated from it when the book is built, and every target is a link, so the
strict build fails when a section it points to disappears; ``tests/_book/test_questions.py``
checks the same without a build.

A target is either a MyST label of the book (``ch-softmax`` or ``sec-wc-pooling``, written
``(sec-wc-pooling)=`` above a heading) or a heading anchor,
``chapters/06_mlp_backprop.md#the-network``, whose slug is the one MyST gives the heading
(``myst_heading_anchors = 3`` in ``conf.py``: headings down to level 3). A section's label is
preferred where the chapter gives it one; an anchor changes whenever the heading is reworded.

Numbering
---------
One entry per question number the report gives, down to its smallest part ("Q1.1c iv" is
part iv of part c of question 1.1); parts for which the report gives no text at all, only a
placeholder ("a to b) CODE"), are one entry ("Q2.3a-b"). Report 000 numbers the parts of its
questions 1 and 3 "1a" to "1c"; they are listed as parts of 1.1 and 3.1, the sections its
table of contents puts them in. Report 004 has two parts numbered I: the questions of the
first (the multilayer perceptron) are "MLP I-Q1" to "MLP I-Q17", those of its convolutional
parts "I-Q1" to "III-Q34", numbered on from one part to the next, as the errata appendix
writes them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = [
    "BOOK",
    "REPORTS",
    "SKIPPED",
    "STATUSES",
    "Question",
    "all_questions",
    "by_report",
    "counts",
    "markdown_table",
    "number_key",
    "resolve",
    "targets_in_book",
    "where_cell",
]

#: The statuses a question can have.
STATUSES = ("answered", "partly", "not covered")
Status = Literal["answered", "partly", "not covered"]

#: The five reports, by the first three digits of their file names.
REPORTS = {
    "000": "000_d0450d199b2953aa",
    "001": "001_ce676efc9e2b3789",
    "002": "002_96e139cf604c0a28",
    "003": "003_ffdd02ac6e60fc0f",
    "004": "004_46edfb94b1a3c9c4",
}

#: Numbers a report skips, with the reason: the numbering has a gap there by the report's doing.
SKIPPED = {
    ("004", "III-Q21"): "report 004 has no answer numbered 21: its part III goes from question 20 "
                        "to question 22",
}

#: The book's sources, where targets are looked up (the package sits beside ``book/``).
BOOK = Path(__file__).resolve().parents[2] / "book"

_NUMBER = re.compile(
    r"^(?:(?P<family>MLP )?(?P<part>I|II|III)-)?Q(?P<digits>\d+(?:\.\d+)*)"
    r"(?P<letter>[a-z](?:-[a-z])?)?(?: (?P<roman>i|ii|iii|iv|v))?$")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5}


def number_key(number: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The family and the components of a question number, each component a range ``(lo, hi)``.

    Digits, letters (``a`` = 1) and roman numerals (after a space) are components; a range
    such as ``a-b`` covers two. In report 004 the family is ``"MLP"`` for the perceptron's
    questions and ``"conv"`` for the rest, whose part (I, II, III) is a name, not a component.

    Examples
    --------
    >>> number_key("Q1.1c iv")
    ('', ((1, 1), (1, 1), (3, 3), (4, 4)))
    >>> number_key("Q2.3a-b")
    ('', ((2, 2), (3, 3), (1, 2)))
    >>> number_key("MLP I-Q13"), number_key("II-Q12")
    (('MLP', ((13, 13),)), ('conv', ((12, 12),)))
    """
    m = _NUMBER.match(number)
    if m is None:
        raise ValueError(f"question number {number!r} is not of the form 'Q2.1', 'Q1.1b ii', "
                         f"'Q2.3a-b', 'MLP I-Q13' or 'II-Q12'")
    family = "MLP" if m["family"] else ("conv" if m["part"] else "")
    parts = [(int(d), int(d)) for d in m["digits"].split(".")]
    if m["letter"]:
        lo, _, hi = m["letter"].partition("-")
        parts.append((ord(lo) - 96, ord(hi or lo) - 96))
    if m["roman"]:
        parts.append((_ROMAN[m["roman"]],) * 2)
    return family, tuple(parts)


@dataclass(frozen=True)
class Question:
    """One question of a source report.

    Attributes
    ----------
    source : str
        The report's file name stem, e.g. ``"004_46edfb94b1a3c9c4"``.
    number : str
        The number the report gives it, e.g. ``"Q2.5"``, ``"Q1.1c iv"``, ``"MLP I-Q13"``.
    question : str
        The question in one sentence, in the book's words (never the report's).
    status : {"answered", "partly", "not covered"}
        Whether the book answers it.
    targets : tuple of str
        The labels or heading anchors of the sections that answer it (or come closest).
    reason : str
        For ``partly`` and ``not covered``: what is missing, and why.
    """

    source: str
    number: str
    question: str
    status: Status
    targets: tuple[str, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        if self.source[:3] not in REPORTS or REPORTS[self.source[:3]] != self.source:
            raise ValueError(f"unknown report {self.source!r}; known: {sorted(REPORTS.values())}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status != "answered" and not self.reason.strip():
            raise ValueError(f"{self.source[:3]} {self.number}: a {self.status!r} question needs a "
                             f"reason saying what is missing")
        if self.status != "not covered" and not self.targets:
            raise ValueError(f"{self.source[:3]} {self.number}: an {self.status!r} question needs "
                             f"at least one target")
        number_key(self.number)   # raises on a malformed number

    @property
    def report(self) -> str:
        """The report's three digits, e.g. ``"004"``."""
        return self.source[:3]


_Q: list[Question] = []


def _add(report: str, number: str, question: str, targets: tuple[str, ...] | str = (),
         status: Status = "answered", reason: str = "") -> None:
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    _Q.append(Question(REPORTS[report], number, question, status, targets, reason))


C02 = "chapters/02_conv_matrix.md#"
C03 = "chapters/03_counting_parameters.md#"
C05 = "chapters/05_softmax.md#"
C06 = "chapters/06_mlp_backprop.md#"
C07 = "chapters/07_hopfield_attention.md#"
C08 = "chapters/08_graphs.md#"
C09 = "chapters/09_training_cnns.md#"
C10 = "chapters/10_regularisation.md#"
C11 = "chapters/11_padding_position.md#"
C12 = "chapters/12_rotation.md#"
C13 = "chapters/13_transformers.md#"
C14 = "chapters/14_seq2seq.md#"

THREE_BLOCK = C03 + "the-three-block-cnn-flattening-global-pooling-and-batch-norm"
POOLING = "sec-wc-pooling"
SEQ_TRAIN = C14 + "training-without-and-with-attention"
DECODING = C14 + "decoding-greedy-beam-search-and-sampling"
GPT = C13 + "a-small-gpt-trained-while-the-book-is-built"
PLACEHOLDER = "(a coding question: the report shows only a placeholder, so the task is read " \
              "from the course's code template) "

# ---- report 000: convolutions, self-attention, CNN training, seq2seq -------------------------
_add("000", "Q1.1a", "What size is the output of a stride-1 convolution without padding of an "
     "$H \\times W$ image with an $M \\times N$ filter?",
     ("sec-ca-valid", "sec-ca-formula-reports"))
_add("000", "Q1.1b", "Which matrix $M$ gives $\\operatorname{vec}(z) = M \\operatorname{vec}(x)$ "
     "for that convolution, entry by entry?",
     (C02 + "which-weight-sits-where", "sec-cm-report-000"))
_add("000", "Q1.1c", "How many parameters has a network of one filter, 2×2 max pooling and a "
     "three-class output layer, against a fully connected network of the same widths?",
     "sec-cp-conv-vs-fc")
_add("000", "Q1.2", "What does one self-attention head whose projections are identities compute "
     "on a vectorised image?", C07 + "self-attention-on-a-vectorised-image")
_add("000", "Q2.1", "Why does a convolutional layer need fewer parameters than a fully connected "
     "one, and which input sizes can it take?",
     ("sec-wc-locality", "sec-cm-sharing"))
_add("000", "Q2.2", "Why should a convolutional network generalise better on images than a fully "
     "connected one?",
     ("sec-wc-generalisation", "sec-wc-equivariance", POOLING, "sec-wc-spatial"))
_add("000", "Q2.3", "Is a convolutional network a good choice for inputs whose arrangement "
     "carries no meaning?", "sec-wc-spatial")
_add("000", "Q2.4", "How do the training loss and the validation and test accuracy of a small "
     "CNN depend on the learning rate, and which rate is best?", C09 + "the-learning-rate-sweep")
_add("000", "Q2.5", "What do the activation maps of the first layer look like after training at "
     "each learning rate?", C09 + "activation-maps-of-the-first-layer")
_add("000", "Q3.1a", "How well does a character-level encoder-decoder without attention do, "
     "measured by its error rates?", (SEQ_TRAIN, C14 + "without-attention-a-fixed-size-bottleneck"))
_add("000", "Q3.1b", "How much does Bahdanau attention improve the same model?",
     (SEQ_TRAIN, C14 + "bahdanau-attention"))
_add("000", "Q3.1c", "How could the results improve without changing the model, for instance by "
     "beam search or an ensemble?", (DECODING, C14 + "a-small-ensemble"))

# ---- report 001: Hopfield networks, CNN training, seq2seq -------------------------------------
_add("001", "Q1.1", "What are the gradients and Hessians of the two parts of the Hopfield "
     "energy, and why is one part convex and the other concave?",
     (C07 + "the-energy-and-its-derivatives", C05 + "what-kind-of-matrix-it-is"))
_add("001", "Q1.2", "Which update does the concave-convex procedure give when the concave part "
     "is linearised at the current state?",
     C07 + "the-update-rule-from-the-concave-convex-procedure")
_add("001", "Q1.3", "How is that update related to one head of cross-attention with identity "
     "key and value projections?", C07 + "one-update-is-one-attention-step")
_add("001", "Q2.1", "Which learning rate suits the three-block CNN, and what test accuracy and "
     "number of parameters does it have?", (C09 + "the-learning-rate-sweep", THREE_BLOCK))
_add("001", "Q2.2", "What changes when batch norm is added and the flattening is replaced by "
     "global average pooling?", C09 + "batch-norm-and-global-average-pooling")
_add("001", "Q2.3", "Why do batch norm and global average pooling improve the network?",
     (C09 + "batch-norm-and-global-average-pooling",
      C09 + "which-change-does-what-capacity-and-overfitting"))
_add("001", "Q2.4", "Why do the parameter counts of the two networks differ so much?",
     THREE_BLOCK)
_add("001", "Q2.5", "Why use small kernels rather than large ones, and what does pooling "
     "contribute?", (C03 + "small-kernels-or-one-large-kernel", POOLING))
_add("001", "Q3a", "How well does a character-level encoder-decoder without attention do, by "
     "its character and word error rates?", (SEQ_TRAIN, C14 + "error-rates"))
_add("001", "Q3b", "How much does Bahdanau attention lower those error rates?",
     (SEQ_TRAIN, C14 + "bahdanau-attention"))
_add("001", "Q3c", "What do nucleus sampling of several candidates and the error rate of the "
     "best of three give?", DECODING)

# ---- report 002: padding and position, rotation, transformers, graphs ------------------------
_add("002", "Q1.1a", "What is the output of a 2×2 convolution at the corner of an image, and "
     "how can the pixels beyond the border be supplied?",
     C11 + "the-border-term-of-a-convolution")
_add("002", "Q1.1b i", "What validation and test accuracy does the first network reach with "
     "each border treatment, over ten runs?",
     (C11 + "the-experiment", C11 + "comparison-with-the-report-and-the-paper"))
_add("002", "Q1.1b ii", "What tells the two classes apart, and how do the training and test "
     "images differ?", C11 + "the-data-where-versus-what")
_add("002", "Q1.1c i", "How do the valid, same and full zero-padding variants differ?",
     C11 + "two-networks-and-their-borders")
_add("002", "Q1.1c ii", "Why do the valid, same and full variants rank as they do on the test "
     "set?", (C11 + "why-the-failures-fail", C11 + "what-full-and-circular-padding-cost"))
_add("002", "Q1.1c iii", "Why does reflect padding do worse than full zero padding?",
     C11 + "why-the-failures-fail")
_add("002", "Q1.1c iv", "Why does replicate padding do better than zero padding of the same "
     "size?", C11 + "why-the-failures-fail")
_add("002", "Q1.1d i", "What accuracy does the second network, with dense layers in place of "
     "the global maximum, reach with each border treatment?", C11 + "the-experiment")
_add("002", "Q1.1d ii", "How do the second network's results compare with the first's?",
     C11 + "why-the-failures-fail")
_add("002", "Q1.1d iii", "Why does the second network fail on the test set whatever its "
     "padding?", (C11 + "why-the-failures-fail", C11 + "two-networks-and-their-borders"))
_add("002", "Q1.2a", "How does a digit classifier's accuracy depend on the rotation of the test "
     "images, and why is a CNN not invariant to rotation?",
     ("sec-rot-experiment", "sec-rot-tensor"))
_add("002", "Q1.2b", "What changes when the classifier is trained on randomly rotated images?",
     ("sec-rot-experiment", C12 + "what-the-report-says"))
_add("002", "Q2.1a", "Why are long inputs hard for self-attention, and how can its cost be "
     "reduced?", C13 + "the-cost-of-attention-grows-with-the-square-of-the-length")
_add("002", "Q2.1b", "How does the receptive field of an attention layer differ from that of a "
     "convolution?", C13 + "why-the-mlp-is-wide-and-shallow")
_add("002", "Q2.1c", "Why are the attention scores divided by $\\sqrt{d_k}$?",
     C13 + "why-the-scores-are-divided-by-")
_add("002", "Q2.1d", "What do several attention heads gain over one at the same cost?",
     C13 + "several-heads-at-the-cost-of-one")
_add("002", "Q2.2", PLACEHOLDER + "Implement the causal self-attention of a small GPT.", GPT)
_add("002", "Q2.3a-b", PLACEHOLDER + "Implement the decoder block: layer norms, attention and "
     "MLP with residual connections.", GPT)
_add("002", "Q2.3c", "Why is the MLP of a transformer block wide and shallow rather than deep?",
     C13 + "why-the-mlp-is-wide-and-shallow")
_add("002", "Q2.4a", "What does a transformer without positional information know about the "
     "order of its input?", C13 + "without-positions-equivariance-not-invariance")
_add("002", "Q2.4b", "What are the drawbacks of absolute position embeddings, and what do "
     "relative ones offer?",
     (C13 + "absolute-positions", C13 + "relative-positions-rotary-embeddings"))
_add("002", "Q2.5", PLACEHOLDER + "Implement rotary position embeddings in the GPT.",
     ("sec-tf-rotary", GPT), "partly",
     "Rotary embeddings are implemented and checked on their own; the GPT trained in the book "
     "uses a learned table of absolute positions instead.")
_add("002", "Q2.6", PLACEHOLDER + "Implement the forward pass of the GPT, from token indices "
     "to next-token logits.", GPT)
_add("002", "Q2.7", "Train the GPT on a text and show how its loss falls.", GPT)
_add("002", "Q2.8a", PLACEHOLDER + "Generate text with temperature, top-k and nucleus sampling.",
     C13 + "sampling-temperature-top-k-and-nucleus")
_add("002", "Q2.8b", "What does the trained model write when given a few prompts?",
     ("sec-tf-prompt", C13 + "sampling-temperature-top-k-and-nucleus"))
_add("002", "Q2.9a-b", PLACEHOLDER + "Use the template's options for a larger run: pretrained "
     "GPT-2 weights, flash attention and compilation with torch.compile.",
     (C13 + "the-cost-of-attention-grows-with-the-square-of-the-length", "sec-tf-prompt"),
     "partly",
     "The memory saving of fused (flash) attention is explained and the book's GPT has the "
     "layout of GPT-2, but no pretrained weights can be loaded offline and no compiled run is "
     "timed; the chapter says both are out of its scope.")
_add("002", "Q3.1a", "What are the adjacency matrices of the two graphs?",
     (C08 + "the-reports-two-graphs-rebuilt-from-their-matrices", C08 + "graphs-as-matrices"))
_add("002", "Q3.1b", "What do the entries of the square (and of higher powers) of an adjacency "
     "matrix count?", C08 + "powers-of-the-adjacency-matrix-count-walks")
_add("002", "Q3.1c", "What are the degree and Laplacian matrices of the second graph, what does "
     "multiplying node features by the Laplacian do, and which nodes change most?",
     (C08 + "the-laplacian", C08 + "what--computes", C08 + "which-nodes-change-most"))

# ---- report 003: CNN training, seq2seq --------------------------------------------------------
_add("003", "Q2.1", "Which of three learning rates suits the three-block CNN, judged on "
     "validation, and what test accuracy does it give?", C09 + "the-learning-rate-sweep")
_add("003", "Q2.2", "What do batch norm and adaptive average pooling give at the chosen rate?",
     C09 + "batch-norm-and-global-average-pooling")
_add("003", "Q2.3", "How many trainable parameters do the two networks have, why do they differ, "
     "and how does the difference relate to accuracy and training loss?",
     (THREE_BLOCK, C09 + "which-change-does-what-capacity-and-overfitting"))
_add("003", "Q2.4", "What do small kernels and pooling layers bring, and at what cost?",
     (C03 + "small-kernels-or-one-large-kernel", POOLING))
_add("003", "Q3.1", "What character and word error rates does the encoder-decoder without "
     "attention reach?", (SEQ_TRAIN, C14 + "error-rates"))
_add("003", "Q3.2", "What error rates does it reach with Bahdanau attention?",
     (SEQ_TRAIN, C14 + "bahdanau-attention"))
_add("003", "Q3.3", "What do nucleus sampling and the error rate of the best of three "
     "candidates give?", DECODING)

# ---- report 004: the multilayer perceptron ----------------------------------------------------
_add("004", "MLP I-Q1", "What are the training, validation and test sets each for?",
     ("sec-training-splits", C09 + "the-learning-rate-sweep",
      C10 + "normalisation-statistics-come-from-the-training-set"))
_add("004", "MLP I-Q2", "Why do more training examples help a network generalise?",
     ("sec-training-splits", C09 + "which-change-does-what-capacity-and-overfitting"), "partly",
     "Overfitting is measured, but no experiment varies the number of training examples (the "
     "chapter says so).")
_add("004", "MLP I-Q3", "Why does a network need non-linear activation functions?",
     ("sec-mlp-no-activation", C06 + "the-network"))
_add("004", "MLP I-Q4", "What are the sizes $n_x$, $n_h$ and $n_y$, and which of them can be "
     "chosen?", ("sec-mlp-sizes", C06 + "the-network"))
_add("004", "MLP I-Q5", "How do $y$ and $\\hat y$ differ?", C06 + "the-network")
_add("004", "MLP I-Q6", "Why does the network end in a softmax?", "ch-softmax")
_add("004", "MLP I-Q7", "Write out the forward pass of the network.", C06 + "the-network")
_add("004", "MLP I-Q8", "What are the derivatives of the cross-entropy and of the squared error "
     "with respect to $\\hat y$, and what do they say about the minimum?",
     C06 + "squared-error-or-cross-entropy")
_add("004", "MLP I-Q9", "Which loss suits classification, and is the squared error convex?",
     (C06 + "squared-error-or-cross-entropy", "sec-softmax-mse-convexity"))
_add("004", "MLP I-Q10", "What are the merits of full-batch, mini-batch and online gradient "
     "descent?", C06 + "training-full-batch-mini-batches-one-example-at-a-time")
_add("004", "MLP I-Q11", "How does the learning rate affect convergence?",
     C06 + "the-learning-rate")
_add("004", "MLP I-Q12", "Why is backpropagation cheaper than computing each gradient on its "
     "own?", C06 + "what-backpropagation-costs")
_add("004", "MLP I-Q13", "What must the functions of a network satisfy for backpropagation to "
     "apply?", "sec-mlp-kinks")
_add("004", "MLP I-Q14", "Show that the cross-entropy of a softmax is $\\operatorname{lse}(\\tilde y)"
     " - y^\\top \\tilde y$ for a one-hot $y$.", C05 + "cross-entropy-on-top-of-a-softmax")
_add("004", "MLP I-Q15", "What is the gradient of that loss with respect to the logits?",
     C05 + "cross-entropy-on-top-of-a-softmax")
_add("004", "MLP I-Q16", "What are the gradients with respect to the output layer's weights "
     "and bias?", (C06 + "every-gradient-by-hand", C06 + "where-report-004-goes-wrong"))
_add("004", "MLP I-Q17", "What are the gradients with respect to the hidden pre-activation and "
     "the hidden layer's weights and bias?",
     (C06 + "every-gradient-by-hand", C06 + "where-report-004-goes-wrong"))

# ---- report 004: convolutional networks (parts I to III) --------------------------------------
_add("004", "I-Q1", "What is the output size of a convolution with padding and stride, and how "
     "many weights have it and a fully connected layer with the same output?",
     ("sec-ca-formula-reports", "sec-cp-conv-vs-fc"))
_add("004", "I-Q2", "What are the advantages and the limits of a convolution against a fully "
     "connected layer?", ("sec-wc-locality", "sec-cm-sharing"))
_add("004", "I-Q3", "What is spatial pooling for?", POOLING)
_add("004", "I-Q4", "Which layers accept inputs of any size, and where does a classifier stop "
     "accepting them?", "sec-wc-fcn")
_add("004", "I-Q5", "How can a fully connected layer be written as a convolution?",
     "sec-cm-fc-as-conv")
_add("004", "I-Q6", "What does the network compute on a larger image once its fully connected "
     "layers are convolutions?", "sec-wc-fcn")
_add("004", "I-Q7", "How large are the receptive fields of the first and second layers, and how "
     "do they grow with depth?", "sec-ca-receptive-fields")
_add("004", "II-Q8", "Which padding keeps the output as large as the input?",
     "sec-ca-same-halving")
_add("004", "II-Q9", "Which padding and stride halve the size?",
     "sec-ca-same-halving")
_add("004", "II-Q10", "What are the output size and the number of weights of each layer of the "
     "CIFAR-10 network?", C03 + "the-cifar-10-network-of-report-004")
_add("004", "II-Q11", "How many weights does it have in all, against the number of training "
     "images?", C03 + "the-cifar-10-network-of-report-004")
_add("004", "II-Q12", "How does that number compare with a bag-of-words classifier over SIFT "
     "descriptors?", (), "not covered",
     "The book builds no bag-of-words or SIFT pipeline, so neither the comparison nor the "
     "report's \"ten times smaller\" is checked.")
_add("004", "II-Q13", "How do the accuracy and loss of the given network evolve when it is "
     "trained on handwritten digits?", (C10 + "the-ablation", C10 + "what-the-runs-show"))
_add("004", "II-Q14", "What do training and evaluation mode change, and how are the training "
     "and test losses computed?", ("sec-reg-train-eval", C10 + "dropout-and-its-scaling"))
_add("004", "II-Q15", "How must the network change for colour images of CIFAR-10?",
     (C03 + "the-cifar-10-network-of-report-004", C03 + "the-same-network-as-code"))
_add("004", "II-Q16", "How do the learning rate and the batch size affect training?",
     (C06 + "training-full-batch-mini-batches-one-example-at-a-time", C06 + "the-learning-rate",
      C09 + "the-learning-rate-sweep"))
_add("004", "II-Q17", "What loss and accuracy should an untrained ten-class network have?",
     C06 + "the-loss-and-accuracy-of-an-untrained-network")
_add("004", "II-Q18", "How do training and test curves show overfitting?",
     C10 + "what-the-runs-show")
_add("004", "III-Q19", "What does normalising the inputs change?", C10 + "what-the-runs-show")
_add("004", "III-Q20", "Why are the normalisation statistics computed on the training set only?",
     C10 + "normalisation-statistics-come-from-the-training-set")
_add("004", "III-Q22", "What does augmenting the training images with flips and crops change?",
     C10 + "what-the-runs-show")
_add("004", "III-Q23", "Do horizontal flips suit every kind of image?",
     C10 + "flips-are-not-label-preserving-for-digits")
_add("004", "III-Q24", "When can an augmentation hurt?",
     (C10 + "flips-are-not-label-preserving-for-digits", "sec-rot-experiment"))
_add("004", "III-Q25", "Which other augmentations are there, and do they help?",
     ("sec-reg-other-augmentations", "sec-rot-experiment", C10 + "what-the-runs-show"), "partly",
     "Only crops, flips and rotations are tried; other augmentations (elastic distortions, "
     "noise, changes of brightness or colour) are discussed but not measured.")
_add("004", "III-Q26", "What do momentum and a learning-rate schedule change in training?",
     C10 + "what-the-runs-show")
_add("004", "III-Q27", "How do momentum and a learning-rate schedule work?",
     (C10 + "momentum", C10 + "learning-rate-schedules"))
_add("004", "III-Q28", "What does Adam combine, and does it help?", C10 + "what-the-runs-show")
_add("004", "III-Q29", "What does dropout change in training?", C10 + "what-the-runs-show")
_add("004", "III-Q30", "What is regularisation?", ("sec-reg-penalty", "ch-regularisation"))
_add("004", "III-Q31", "How does dropout reduce overfitting?",
     ("sec-reg-ensemble", C10 + "dropout-and-its-scaling",
      C10 + "weight-scaling-approximates-an-average"))
_add("004", "III-Q32", "How does the dropout probability $p$ affect training?",
     ("sec-reg-dropout-p", C10 + "dropout-and-its-scaling"), "partly",
     "What $p$ means is checked, but one value is trained; no sweep of $p$ shows under- and "
     "overfitting (the chapter says so).")
_add("004", "III-Q33", "What does dropout do at test time?", C10 + "dropout-and-its-scaling")
_add("004", "III-Q34", "What does batch norm change?", C10 + "what-the-runs-show")


def all_questions() -> list[Question]:
    """Every question, report by report, in the order of the reports.

    Examples
    --------
    >>> q = all_questions()[0]
    >>> q.report, q.number, q.status
    ('000', 'Q1.1a', 'answered')
    """
    return list(_Q)


def by_report() -> dict[str, list[Question]]:
    """The questions grouped by report (``"000"`` to ``"004"``), each in the report's order.

    Examples
    --------
    >>> [q.number for q in by_report()["003"]]
    ['Q2.1', 'Q2.2', 'Q2.3', 'Q2.4', 'Q3.1', 'Q3.2', 'Q3.3']
    """
    groups: dict[str, list[Question]] = {r: [] for r in REPORTS}
    for q in _Q:
        groups[q.report].append(q)
    return groups


def counts() -> dict[tuple[str, str], int]:
    """How many questions each report has with each status: ``{(report, status): n}``.

    Examples
    --------
    >>> c = counts()
    >>> sum(c[r, s] for r in REPORTS for s in STATUSES) == len(all_questions())
    True
    """
    n = Counter((q.report, q.status) for q in _Q)
    return {(r, s): n.get((r, s), 0) for r in REPORTS for s in STATUSES}


# ---- targets: labels and heading anchors of the book's sources --------------------------------

_LABEL = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$", re.MULTILINE)


@cache
def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence", "deflist",
                                               "substitution"})
    return create_md_parser(config, RendererHTML)


def _headings(text: str, max_level: int = 3) -> list[tuple[str, str, int]]:
    """``(slug, title, level)`` of every heading down to ``max_level``, as MyST slugs them."""
    from markdown_it.tree import SyntaxTreeNode
    from myst_parser.mdit_to_docutils.base import compute_unique_slug

    slugs: set[str] = set()
    out = []
    for node in SyntaxTreeNode(_parser().parse(text)).walk():
        if node.type != "heading":
            continue
        level = int(node.tag[1])
        if level > max_level:
            continue
        slug = compute_unique_slug(node, slugs)
        if not slug:
            continue
        slugs.add(slug)
        out.append((slug, node.children[0].content, level))
    return out


@cache
def targets_in_book(book: Path = BOOK) -> dict[str, tuple[str, str, str]]:
    """Every label and heading anchor of the book's sources.

    Returns ``{target: (document, kind, title)}``: a label ``(name)=`` maps to the document it
    is in, kind ``"chapter"`` (a label on the document's title) or ``"label"`` (on a section),
    and the title of the heading below it; an anchor
    ``"chapters/x.md#slug"`` maps to ``"chapters/x"``, kind ``"anchor"`` and the heading's
    text (MyST markdown, math included).

    Examples
    --------
    >>> targets_in_book()["chapters/05_softmax.md#the-jacobian"]
    ('chapters/05_softmax', 'anchor', 'The Jacobian')
    """
    found: dict[str, tuple[str, str, str]] = {}
    for path in sorted(book.rglob("*.md")):
        rel = path.relative_to(book)
        if rel.parts[0].startswith(("_", ".")):
            continue
        text = path.read_text(encoding="utf-8")
        doc = rel.with_suffix("").as_posix()
        heads = _headings(text)
        for slug, title, _ in heads:
            found[f"{rel.as_posix()}#{slug}"] = (doc, "anchor", title)
        for m in _LABEL.finditer(text):
            after = _headings(text[m.end():], max_level=6)
            title, level = (after[0][1], after[0][2]) if after else (m["label"], 0)
            found[m["label"]] = (doc, "chapter" if level == 1 else "label", title)
    return found


def resolve(target: str, book: Path = BOOK) -> tuple[str, str, str]:
    """``(document, kind, title)`` of a target; ``KeyError`` with a clear message if it is missing.

    Examples
    --------
    >>> resolve("ch-softmax")
    ('chapters/05_softmax', 'chapter', 'Softmax and its Jacobian')
    """
    found = targets_in_book(book)
    if target not in found:
        raise KeyError(f"target {target!r} is neither a label '(name)=' nor a heading anchor "
                       f"'chapters/<file>.md#<slug>' of the book's sources in {book}")
    return found[target]


def _chapter_label(doc: str, book: Path) -> str | None:
    for target, (d, kind, _) in targets_in_book(book).items():
        if kind == "chapter" and d == doc:
            return target
    return None


def _cell(text: str) -> str:
    """A string made safe inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def where_cell(q: Question, from_doc: str = "appendix/questions", book: Path = BOOK) -> str:
    """The "where answered" cell: per chapter a ``{ref}`` to it, then links to its sections.

    A section label becomes a ``{ref}`` role, a heading anchor a markdown link whose text is
    the heading.

    The links are relative to ``from_doc``; a missing label or anchor makes the strict build
    fail, and :func:`resolve` raises here first.

    Examples
    --------
    >>> q = next(q for q in all_questions() if q.number == "MLP I-Q15")
    >>> where_cell(q)
    '{ref}`ch-softmax`: [Cross-entropy on top of a softmax](../chapters/05_softmax.md#cross-entropy-on-top-of-a-softmax)'
    """
    depth = from_doc.count("/")
    groups: dict[str, list[str]] = {}
    for target in q.targets:
        doc, kind, title = resolve(target, book)
        links = groups.setdefault(doc, [])
        if kind == "anchor":
            path, _, slug = target.partition("#")
            links.append(f"[{_cell(title)}]({'../' * depth}{path}#{slug})")
        elif kind == "label":
            links.append(f"{{ref}}`{target}`")
    parts = []
    for doc, links in groups.items():
        label = _chapter_label(doc, book)
        head = f"{{ref}}`{label}`" if label else doc
        parts.append(head + (": " + ", ".join(links) if links else ""))
    return "; ".join(parts) if parts else "—"


def markdown_table(report: str, from_doc: str = "appendix/questions", book: Path = BOOK) -> str:
    """The table of one report's questions (MyST markdown): number, question, where, status.

    Examples
    --------
    >>> print(markdown_table("003").splitlines()[0])
    | number | question | where the book answers it | status |
    """
    lines = ["| number | question | where the book answers it | status |",
             "|---|---|---|---|"]
    for q in by_report()[report]:
        status = f"**{q.status}**" + (f": {_cell(q.reason)}" if q.reason else "")
        lines.append(f"| {q.number} | {_cell(q.question)} | {where_cell(q, from_doc, book)} "
                     f"| {status} |")
    return "\n".join(lines)
