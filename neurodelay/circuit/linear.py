"""Closed-form execution of cycles that are linear in their state.

A cycle made only of components with ``linear_taps`` (Relay, Blend,
Extrapolator) joined by fixed whole-step delays is a linear recurrence with
constant coefficients once its start-up is over::

    y[t] = sum_j A_j y[t - j] + u[t]

where ``y`` stacks the cycle's node outputs and ``u`` collects the inputs
from outside the cycle. The first ``t0`` steps (while delay lines still hold
their first value and blends wait for their prediction) are stepped as usual;
the rest is solved in chunks of ``L`` steps: one batched matrix product maps
a chunk's inputs and the state it starts from (the cycle's last ``order``
outputs) to the chunk's outputs, a lower-triangular Toeplitz block joined
with the state's response. The outside inputs enter the product as they are
(each term's weights are part of the chunk matrix), so they are not scaled
or summed beforehand. Work per element is O(L K + D) with K outside-input
terms (an edge at a tap) and D = N x order carried values, and there are
T / L Python steps instead of T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..components.delays import time_window


__all__ = ["LinearLoop", "analyse_loop"]

_CHUNK = 16  # steps per chunk on CPU: 16 and 32 measured fastest at T = 1000 (benchmarks/RESULTS.md)
_CHUNK_ACCEL = 64  # on other devices, where each product is one kernel launch: fewer, larger chunks
_MAX_GROWTH = 2.0 ** 10  # largest growth of a recurrence over the solved steps (amplifies rounding)


@dataclass
class LinearLoop:
    """Coefficients of a linear cycle (see module docstring).

    Attributes
    ----------
    nodes : list of str
        Nodes of the cycle, in the order of ``y``.
    lags : numpy.ndarray, shape (J, N, N)
        ``lags[j - 1] = A_j`` after eliminating same-step dependencies.
    mix : numpy.ndarray, shape (N, N)
        ``(I - A_0)^-1``, applied to the outside inputs.
    ext_taps : dict
        node index -> list of (edge index, tap, weight) for outside inputs.
    t0 : int
        First step solved in closed form.
    """

    nodes: list[str]
    lags: np.ndarray
    mix: np.ndarray
    ext_taps: dict[int, list[tuple[int, int, float]]]
    t0: int
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def order(self) -> int:
        return self.lags.shape[0]

    def companion(self) -> np.ndarray:
        """The companion matrix of the recurrence, acting on ``(y[t-1], ..., y[t-J])`` stacked."""
        n, j = len(self.nodes), self.order
        a = np.zeros((n * j, n * j))
        a[:n, :] = np.concatenate(list(self.lags), axis=1)
        a[n:, :-n] = np.eye(n * j - n)
        return a

    def suits(self, n_steps: int) -> bool:
        """Whether ``n_steps`` steps may be solved in closed form without amplifying rounding.

        A recurrence that grows (spectral radius rho above 1) amplifies every
        rounding error by up to rho per step; stepping is exact where the
        growing mode is not excited (a held value under gamma = 1 and
        alpha = 2, say), the closed form is not. Growth over the sequence
        must stay below ``_MAX_GROWTH``; otherwise the cycle is stepped.
        """
        if "rho" not in self._cache:
            a = self.companion()
            self._cache["rho"] = float(np.abs(np.linalg.eigvals(a)).max()) if a.size else 0.0
        rho = self._cache["rho"]
        return rho <= 1.0 + 1e-9 or n_steps * math.log(rho) <= math.log(_MAX_GROWTH)

    def input_terms(self) -> list[tuple[int, int, np.ndarray]]:
        """Outside inputs as ``(edge index, tap, b)``: the term adds ``b * x_edge[t - tap]`` to ``y[t]`` (cached).

        ``b`` (one weight per node) is the term's weight spread by ``(I - A_0)^-1``.
        Terms that reach no node are left out; repeated (edge, tap) pairs are merged.
        """
        if "terms" not in self._cache:
            merged: dict[tuple[int, int], np.ndarray] = {}
            for m, terms in self.ext_taps.items():
                for edge, tap, weight in terms:
                    b = self.mix[:, m] * weight
                    merged[(edge, tap)] = merged.get((edge, tap), 0.0) + b
            self._cache["terms"] = [(edge, tap, b) for (edge, tap), b in merged.items() if np.any(b != 0.0)]
        return self._cache["terms"]

    def matrices(self, n_chunk: int, dtype, device):
        """The matrix of a chunk of ``n_chunk`` steps, and its state update (cached).

        Returns ``(response, carry)``. ``response`` maps a chunk's inputs and
        the state it starts from to its outputs. Rows: node-major
        (node, step), so each node's outputs are consecutive. Columns: the
        :meth:`input_terms`' inputs, step-major (step, term), then the carried
        state. ``carry`` indexes the rows of ``cat([outputs, state])`` that
        make the state the chunk leaves (its last ``order`` steps, taking the
        older steps from the state it started from when the chunk is shorter
        than the order).
        """
        key = (n_chunk, dtype, str(device))
        if key in self._cache:
            return self._cache[key]
        terms = self.input_terms()
        spread = (np.stack([b for *_, b in terms], axis=1) if terms
                  else np.zeros((len(self.nodes), 0)))  # (N, K): each term's weights on the nodes
        n, j = len(self.nodes), self.order
        d = n * j
        a = self.companion()
        e = np.zeros((d, n))
        e[:n] = np.eye(n)
        powers = [np.eye(d)]
        for _ in range(n_chunk):
            powers.append(a @ powers[-1])
        eb = e @ spread  # (D, K): where each term enters the state
        h = [powers[m][:n] @ eb for m in range(n_chunk)]  # (N, K) impulse responses
        k = spread.shape[1]
        toeplitz = np.zeros((n_chunk * n, n_chunk * k))
        for i in range(n_chunk):
            for src in range(i + 1):
                toeplitz[i * n:(i + 1) * n, src * k:(src + 1) * k] = h[i - src]
        from_state = np.concatenate([powers[i + 1][:n] for i in range(n_chunk)], axis=0)  # (L N, D)
        step_major = np.concatenate([toeplitz, from_state], axis=1)
        node_major = step_major.reshape(n_chunk, n, -1).transpose(1, 0, 2).reshape(n_chunk * n, -1)
        # State entry (lag g, node i) = output of node i at step L - 1 - g of the chunk,
        # or, for g >= L, entry (g - L, i) of the state the chunk started from.
        carry = [i * n_chunk + n_chunk - 1 - g if g < n_chunk else n_chunk * n + (g - n_chunk) * n + i
                 for g in range(j) for i in range(n)]
        out = (torch.as_tensor(node_major, dtype=dtype, device=device),
               torch.as_tensor(carry, dtype=torch.long, device=device))
        self._cache[key] = out
        return out

    def solve(self, history: dict[str, list[Tensor]], external: dict[int, Tensor], n_t: int,
              shapes: dict[str, tuple]) -> dict[str, Tensor]:
        """Outputs of every node for all steps, given the first ``t0`` stepped values.

        Parameters
        ----------
        history : dict
            node -> list of its outputs at steps 0 .. t0 - 1, each (sample, ...).
        external : dict
            edge index -> delayed outside input, (sample, time, ...).
        n_t : int
            Number of steps.
        shapes : dict
            node -> shape of one step's output, without the sample axis.

        Notes
        -----
        Everything stays sample-major, (sample, step, feature), so no
        sequence is transposed or padded. Chunk by chunk, one matrix product
        batched over the samples maps the chunk's inputs (a view of the
        outside input when one term enters) and the carried state to the
        chunk's outputs; the next state is a few of those outputs. Each
        chunk's operands stay in cache, and each node's outputs are written
        once, by the final concatenation.
        """
        nodes, n, j, t0 = self.nodes, len(self.nodes), self.order, self.t0
        ref = history[nodes[0]][0]
        n_s = ref.shape[0]
        feat = ref[0].numel()
        n_rest = n_t - t0
        n_chunk = min(_CHUNK if ref.device.type == "cpu" else _CHUNK_ACCEL, n_rest)
        terms = self.input_terms()
        state = torch.stack([history[nodes[i]][t0 - 1 - lag].reshape(n_s, feat)
                             for lag in range(j) for i in range(n)], dim=1)  # (sample, D, feature)
        v = None
        if terms:
            xs = [time_window(external[edge].reshape(n_s, n_t, feat), t0 - tap, n_rest) for edge, tap, _ in terms]
            v = xs[0] if len(xs) == 1 else torch.stack(xs, dim=2).view(n_s, n_rest * len(terms), feat)
        pieces: list[list[Tensor]] = [[torch.stack(history[name], dim=1).reshape(n_s, t0, feat)]
                                      for name in nodes]
        # One split, not a slice per chunk: the backward of each slice would
        # write a zero tensor of the whole sequence.
        v_chunks = v.split(n_chunk * len(terms), dim=1) if v is not None else None
        for c, start in enumerate(range(0, n_rest, n_chunk)):
            length = min(n_chunk, n_rest - start)
            response, carry = self.matrices(length, ref.dtype, ref.device)
            joined = state if v is None else torch.cat([v_chunks[c], state], dim=1)
            y = torch.matmul(response, joined)  # (sample, N * length, feature), node-major
            state = (y if j <= length else torch.cat([y, state], dim=1)).index_select(1, carry)
            for i, part in enumerate(y.view(n_s, n, length, feat).unbind(1)):
                pieces[i].append(part)
        return {name: torch.cat(parts, dim=1).view(n_s, n_t, *shapes[name])
                for name, parts in zip(nodes, pieces)}


def analyse_loop(nodes: list[str], plan, specs, delays) -> LinearLoop | None:
    """The :class:`LinearLoop` of a cycle, or None if it is not linear with fixed whole-step delays."""
    taps = {}
    for name in nodes:
        t = specs[name].linear_taps()
        if t is None or specs[name].learns_taps():
            return None
        taps[name] = t
    index = {name: i for i, name in enumerate(nodes)}
    internal, ext_taps = [], {}
    t0 = 1
    for name in nodes:
        pv = plan.port_valid(name)
        for port in specs[name].ports:
            start = 0
            while not specs[name].reads(port, start, pv):
                start += 1
            t0 = max(t0, start)
        for e in plan.inputs_of(name):
            if e.source in index:
                line = delays(e)
                if line is not None and (line.learnable or line.per_channel or not line._whole):
                    return None
                k = int(round(float(np.asarray(e.steps))))
                t0 = max(t0, k)
                for tap, w in taps[name][e.port]:
                    internal.append((index[name], index[e.source], tap + k, w))
            else:
                for tap, w in taps[name][e.port]:
                    ext_taps.setdefault(index[name], []).append((e.index, tap, w))
    n = len(nodes)
    order = max([lag for *_, lag, _ in internal] + [1])
    a = np.zeros((order + 1, n, n))
    for i, m, lag, w in internal:
        a[lag, i, m] += w
    mix = np.linalg.inv(np.eye(n) - a[0])
    lags = np.einsum("nm,jmk->jnk", mix, a[1:])
    return LinearLoop(nodes, lags, mix, ext_taps, max(t0, order))
