"""Claims about sequence-to-sequence decoding, ensembles and error rates (chapter ch-seq2seq).

Reports 000, 001 and 003 (question 3) train encoder-decoders on a different data set; the
error rates they report are not checked here.  What is checked: the statements about beam
search, ensembling and reversing the source (report 000, 1c), and what the reported WER@3
values can and cannot mean (reports 001 and 003).  Beam search is checked against brute-force
enumeration of every output sequence of small random models, the ensemble against exact
inequalities on random distributions, and source reversal against the encoder-decoder of
:mod:`dlmath.models.seq2seq` itself.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import torch

from dlmath._book.claims import Check, Claim, register
from dlmath.decoding import beam_search, greedy_decode
from dlmath.engine.ensemble import combine_logits
from dlmath.metrics import wer, wer_at_k
from dlmath.models.seq2seq import Seq2Seq

R000 = "000_d0450d199b2953aa"
R001 = "001_ce676efc9e2b3789"
R003 = "003_ffdd02ac6e60fc0f"
CHAPTER = "ch-seq2seq"


# --- small autoregressive models given by a table: prefix -> next-token distribution -------

class _TableModel:
    """A model whose next-token logits are an arbitrary function of the whole prefix.

    ``logits(prefix)`` is drawn once per prefix from a seeded generator (or read from a
    table), so the model is fixed and every sequence probability can be enumerated.
    The decoder state is the ``(N, t)`` tensor of tokens read so far (start token first).
    """

    def __init__(self, vocab: int, seed: int = 0, scale: float = 2.0, eos_after: int = 0,
                 table: dict[tuple[int, ...], list[float]] | None = None) -> None:
        self.vocab, self.seed, self.scale, self.eos_after = vocab, seed, scale, eos_after
        self.table = table
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}

    def logits(self, prefix: tuple[int, ...]) -> torch.Tensor:
        if prefix not in self._cache:
            if self.table is not None:
                self._cache[prefix] = torch.tensor(self.table[prefix], dtype=torch.float64).log()
            else:
                key = hashlib.blake2b(repr((self.seed, *prefix)).encode(), digest_size=8)
                g = torch.Generator().manual_seed(int.from_bytes(key.digest(), "big") % 2**62)
                z = self.scale * torch.randn(self.vocab, generator=g, dtype=torch.float64)
                if len(prefix) < self.eos_after:
                    z[0] = float("-inf")                     # <eos> (id 0) not yet allowed
                self._cache[prefix] = z
        return self._cache[prefix]

    def step(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = torch.cat([state, tokens[:, None]], dim=1)                  # (N, t)
        return torch.stack([self.logits(tuple(r[1:])) for r in state.tolist()]), state

    def log_prob(self, tokens: tuple[int, ...]) -> float:
        """Log-probability of a token sequence (a prefix: no <eos> appended)."""
        total, prefix = 0.0, ()
        for t in tokens:
            total += float(self.logits(prefix).log_softmax(-1)[t])
            prefix = (*prefix, t)
        return total


def _empty_state() -> torch.Tensor:
    return torch.zeros(1, 0, dtype=torch.long)


def _check_beam_keeps_top_k(models: int = 100, vocab: int = 4, steps: int = 3, k: int = 2) -> Check:
    # <eos> is forbidden for `steps` tokens, so after `steps` steps the beam holds k live prefixes
    differ = {t: 0 for t in range(1, steps + 1)}
    for seed in range(models):
        model = _TableModel(vocab, seed=seed, eos_after=steps)
        for t in range(1, steps + 1):
            beam = beam_search(model.step, _empty_state(), bos=0, eos=0, max_len=t,
                               beam_width=k, alpha=0.0)[0]
            kept = {h.tokens for h in beam}
            # brute force: every prefix of length t over the non-<eos> tokens
            prefixes = sorted(itertools.product(range(1, vocab), repeat=t),
                              key=lambda p: -model.log_prob(p))
            differ[t] += kept != set(prefixes[:k])
    first_ok = differ[1] == 0
    later = sum(differ[t] for t in range(2, steps + 1))
    verdict = "correct" if first_ok and later == 0 else "incomplete" if first_ok else "incorrect"
    return Check(
        verified="the $k$ most probable one-token extensions of the $k$ prefixes kept at the "
                 "previous step",
        verdict=verdict,
        note=f"Compared with all prefixes enumerated on {models} random models "
             f"({vocab - 1} tokens, width {k}): the beam is the top {k} at the first step in "
             f"every model, but at step {steps} it misses a more probable prefix in "
             f"{differ[steps]} of them (a prefix whose parent was pruned earlier). Beam search "
             "approximates the k best partial outputs; it does not track them.")


# A model on which greedy decoding finds "a <eos>" (p = 0.4 * 0.34 = 0.136) while a beam of
# width 2 follows "b", whose two continuations look better after two steps (0.175 each) but
# lead to an uncertain future (ids: <eos> 0, a 1, b 2, c 3).
_UNIFORM = [0.25, 0.25, 0.25, 0.25]
_GREEDY_WINS = {(): [0.0, 0.40, 0.35, 0.25], (1,): [0.34, 0.33, 0.33, 0.0],
                (2,): [0.0, 0.5, 0.5, 0.0], (3,): _UNIFORM}


def _greedy_wins_table() -> dict[tuple[int, ...], list[float]]:
    table = dict(_GREEDY_WINS)
    for n in range(1, 6):                 # every longer prefix: uniform over the 4 tokens
        for p in itertools.product(range(4), repeat=n):
            table.setdefault(p, _UNIFORM)
    return table


def _check_beam_beats_greedy(models: int = 100, k: int = 3) -> Check:
    model = _TableModel(4, table=_greedy_wins_table())
    g = greedy_decode(model.step, _empty_state(), bos=0, eos=0, max_len=5)[0]
    b = beam_search(model.step, _empty_state(), bos=0, eos=0, max_len=5, beam_width=2,
                    alpha=0.0)[0][0]
    # the same probabilities by enumeration, independently of the decoders
    p_greedy = math.exp(model.log_prob((*g.tokens, 0)))
    p_beam = math.exp(model.log_prob((*b.tokens, 0)))
    counter = g.finished and b.finished and p_beam < p_greedy
    better = worse = 0
    for seed in range(models):
        m = _TableModel(4, seed=10_000 + seed)
        g1 = greedy_decode(m.step, _empty_state(), bos=0, eos=0, max_len=6)[0]
        b1 = beam_search(m.step, _empty_state(), bos=0, eos=0, max_len=6, beam_width=k,
                         alpha=0.0)[0][0]
        better += b1.log_prob > g1.log_prob + 1e-9
        worse += b1.log_prob < g1.log_prob - 1e-9
    return Check(
        verified="usually a more probable output, but not always: beam search can end with a "
                 "less probable output than greedy decoding",
        verdict="incomplete" if counter else "correct",
        note=f"On a four-token model built for the purpose, greedy decoding finds an output of "
             f"probability {p_greedy:.3f} and a beam of width 2 one of {p_beam:.3f}: the greedy "
             f"prefix was pruned at step 2 by two prefixes with a poor future. On {models} random "
             f"models a width-{k} beam found a more probable output than greedy in {better} and a "
             f"less probable one in {worse}.")


def _check_ensemble(cases: int = 200) -> Check:
    g = torch.Generator().manual_seed(0)
    worst = {"logprob": -math.inf, "prob": -math.inf}
    for _ in range(cases):
        z = 3.0 * torch.randn(3, 8, 5, generator=g, dtype=torch.float64)      # (M, N, V)
        y = torch.randint(5, (8,), generator=g)
        member = torch.stack([torch.nn.functional.cross_entropy(zm, y) for zm in z]).mean()
        for combine in worst:
            ens = torch.nn.functional.cross_entropy(combine_logits(list(z), combine).double(), y)
            worst[combine] = max(worst[combine], float(ens - member))
    # accuracy: one item of class 0; one member of three is right, the ensemble is not
    probs = torch.tensor([[[0.6, 0.4]], [[0.1, 0.9]], [[0.1, 0.9]]], dtype=torch.float64)
    ens_pred = {c: int(combine_logits(list(probs.log()), c).argmax(-1)) for c in worst}
    member_acc = float((probs.argmax(-1) == 0).double().mean())
    loss_ok = max(worst.values()) <= 1e-12
    acc_fails = all(p != 0 for p in ens_pred.values()) and member_acc > 0
    return Check(
        verified="the ensemble's cross-entropy is at most the members' average; its accuracy "
                 "carries no guarantee",
        verdict="incorrect" if not loss_ok else "incomplete" if acc_fails else "correct",
        note=f"On {cases} random cases (3 members) the ensemble's cross-entropy never exceeded "
             f"the average member's (Jensen for averaged probabilities, AM-GM for averaged "
             f"log-probabilities; the closest case was {-max(worst.values()):.2f} nats below). "
             f"For accuracy one item suffices against it: one member of three right, both "
             f"ensembles wrong (member "
             f"accuracy {member_acc:.2f}, ensemble 0). Boosting, also named, trains its models "
             "one after another, not independently.")


def _reverse_rows(src: torch.Tensor, pad_id: int = 0) -> torch.Tensor:
    out = src.clone()
    for b, row in enumerate(src):
        n = int((row != pad_id).sum())
        out[b, :n] = row[:n].flip(0)
    return out


def _swap_directions(model: Seq2Seq) -> Seq2Seq:
    """A copy that reads the reversed source and computes exactly what ``model`` computes."""
    twin = Seq2Seq(model.src_emb.num_embeddings, model.tgt_emb.num_embeddings,
                   emb_dim=model.src_emb.embedding_dim, hidden_size=model.hidden_size,
                   attention=model.attention).double()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        state[f"encoder.{name}"], state[f"encoder.{name}_reverse"] = \
            state[f"encoder.{name}_reverse"], state[f"encoder.{name}"]
    H = model.hidden_size
    swap = torch.cat([torch.arange(H, 2 * H), torch.arange(H)])   # [fwd; bwd] -> [bwd; fwd]
    E = model.src_emb.embedding_dim

    def permute_cols(w: torch.Tensor, start: int) -> torch.Tensor:
        w = w.clone()
        w[:, start:start + 2 * H] = w[:, start + swap]
        return w

    for name in ("bridge_h.weight", "bridge_c.weight"):
        state[name] = permute_cols(state[name], 0)
    if model.attention:
        state["U_a.weight"] = permute_cols(state["U_a.weight"], 0)
        state["decoder.weight_ih"] = permute_cols(state["decoder.weight_ih"], E)   # [E y; c]
        state["out.weight"] = permute_cols(state["out.weight"], H)                 # [s; c; E y]
    twin.load_state_dict(state)
    return twin.eval()


def _check_reverse_source() -> Check:
    torch.manual_seed(0)
    worst = 0.0
    for attention in (True, False):
        model = Seq2Seq(12, 9, emb_dim=6, hidden_size=8, attention=attention).double().eval()
        src = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 10, 0, 0], [11, 3, 0, 0, 0]])
        tgt_in = torch.tensor([[1, 4, 5, 6], [1, 7, 3, 0], [1, 8, 0, 0]])
        twin = _swap_directions(model)
        with torch.no_grad():
            worst = max(worst, float((model(src, tgt_in) - twin(_reverse_rows(src), tgt_in))
                                     .abs().max()))
    same = worst < 1e-10
    return Check(
        verified="with a bidirectional encoder, reversing the source changes nothing the model "
                 "can learn",
        verdict="incomplete" if same else "correct",
        note="Reversal helped the unidirectional LSTMs of Sutskever et al. (2014). With a "
             "bidirectional encoder (with or without attention), the model with its two encoder "
             "directions swapped computes on reversed sources exactly what the original computes "
             f"on the originals (largest difference {worst:.0e} in float64): both orders define "
             "the same set of models.")


def _check_wer_at_k_monotone() -> tuple[bool, int]:
    """WER@1 = WER of the first candidates, and WER@k never increases with k (random corpora)."""
    g = torch.Generator().manual_seed(0)
    words = ["remainder", "remender", "scare", "skeer", "scaur", "slogger", "slogar"]
    ok, cases = True, 0
    for _ in range(100):
        refs = [words[int(i)] for i in torch.randint(len(words), (6,), generator=g)]
        cands = [[words[int(i)] for i in torch.randint(len(words), (4,), generator=g)]
                 for _ in refs]
        rates = [wer_at_k(cands, refs, k=k) for k in range(1, 5)]
        ok &= rates[0] == wer([c[0] for c in cands], refs)
        ok &= all(a >= b for a, b in zip(rates, rates[1:]))
        # brute force: fraction of words that no candidate among the first k spells right
        ok &= all(abs(r - sum(ref not in c[:k] for c, ref in zip(cands, refs)) / len(refs)) < 1e-12
                  for k, r in zip(range(1, 5), rates))
        cases += 1
    return ok, cases


def _check_001_wer_at_3() -> Check:
    ok, cases = _check_wer_at_k_monotone()
    wer_reported, wer3_reported = 0.8170, 0.7390
    consistent = ok and wer3_reported <= wer_reported
    return Check(
        verified="WER@3 ≤ WER of the first candidate, necessarily",
        verdict="correct" if consistent else "incorrect",
        note=f"WER@k cannot increase with k and equals the WER at k = 1 (checked on {cases} random "
             "corpora against counting by hand), so WER@3 = 0.739 below WER = 0.817 for the same "
             "sampler is consistent. The report does not say whether its three candidates are "
             "distinct.")


# The ten examples report 003 prints: reference and the set of sampled spellings.
_003_EXAMPLES = [
    ("remainder", {"remainder", "remender"}),
    ("misperception", {"mesperception", "misperception"}),
    ("crudités", {"cruditai", "croudite", "cruditay"}),
    ("slogger", {"slogger", "slogar"}),
    ("Jingchuan", {"gingoen", "ginglwan", "jinguan"}),
    ("scare", {"scaur", "skeer", "skear"}),
    ("glossal", {"glossal", "gloسل", "glosal"}),
    ("touchedness", {"tutudenis", "tutuddice", "tutuddecis"}),
    ("alkaloses", {"alcoloses", "alcoholoses", "alcolosies"}),
    ("companions", {"companuns", "companions"}),
]


def _check_003_wer_at_3() -> Check:
    ok, cases = _check_wer_at_k_monotone()
    refs = [r for r, _ in _003_EXAMPLES]
    cands = [sorted(c) for _, c in _003_EXAMPLES]
    short = sum(len(c) < 3 for c in cands)
    listed_rate = wer_at_k(cands, refs)
    consistent = ok and 0.7550 <= 0.8550
    verdict = "incomplete" if consistent and short else "correct" if consistent else "incorrect"
    return Check(
        verified=f"{short} of the 10 listed words have only 2 distinct candidates",
        verdict=verdict,
        note=f"WER@3 = 0.755 below WER = 0.855 is consistent (WER@k never increases with k; "
             f"{cases} random corpora). But the listed candidate sets show that the three samples "
             f"of a word may coincide: for {short} of the 10 words the rate is a best of 2. "
             f"The book draws until it has 3 distinct candidates. On the ten listed words the "
             f"best-of-candidates error is {listed_rate:.2f}.")


register(Claim(id="000-Q3-1c-beam-keeps-top-k", source=R000, question="Q3 1c",
               topic="what beam search of width k keeps at each step",
               claimed="at every step, the k partial outputs of highest probability",
               check=_check_beam_keeps_top_k, chapter=CHAPTER, expected="incomplete"))
register(Claim(id="000-Q3-1c-beam-vs-greedy", source=R000, question="Q3 1c",
               topic="beam search as the remedy for the errors of greedy decoding",
               claimed="by keeping k candidates, beam search corrects the errors that greedy "
                       "decoding propagates",
               check=_check_beam_beats_greedy, chapter=CHAPTER, expected="incomplete"))
register(Claim(id="000-Q3-1c-ensemble", source=R000, question="Q3 1c",
               topic="combining independently trained models",
               claimed="an ensemble of independently trained models raises the accuracy",
               check=_check_ensemble, chapter=CHAPTER, expected="incomplete"))
register(Claim(id="000-Q3-1c-reverse-source", source=R000, question="Q3 1c",
               topic="reversing the source sequence",
               claimed="feeding the source in reverse order improves the model",
               check=_check_reverse_source, chapter=CHAPTER, expected="incomplete"))
register(Claim(id="001-Q3c-wer-at-3", source=R001, question="Q3 c",
               topic="WER@3 of nucleus sampling next to the WER of one sample",
               claimed="WER@3 = 0.7390 with WER = 0.8170",
               check=_check_001_wer_at_3, chapter=CHAPTER, expected="correct"))
register(Claim(id="003-Q3.3-wer-at-3-candidates", source=R003, question="Q3.3",
               topic="the three sampled candidates behind WER@3",
               claimed="three candidates per word; WER@3 = 0.7550 with WER = 0.8550",
               check=_check_003_wer_at_3, chapter=CHAPTER, expected="incomplete"))
