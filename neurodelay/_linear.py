"""Closed-form execution of cycles that are linear in their state.

A cycle made only of components with ``linear_taps`` (Relay, Blend,
Extrapolator) joined by fixed whole-step delays is a linear recurrence with
constant coefficients once its start-up is over::

    y[t] = sum_j A_j y[t - j] + u[t]

where ``y`` stacks the cycle's node outputs and ``u`` collects the inputs
from outside the cycle. The first ``t0`` steps (while delay lines still hold
their first value and blends wait for their prediction) are stepped as usual;
the rest is solved in chunks of ``L`` steps: within a chunk the response to
the inputs is one batched lower-triangular (Toeplitz) matrix product, and
only the small companion state is carried from chunk to chunk. Work per
element is O(L N^2) with N nodes in the cycle, and there are T / L Python
steps instead of T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


__all__ = ["LinearLoop", "analyse_loop"]

_CHUNK = 16


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
    _cache: dict | None = None

    @property
    def order(self) -> int:
        return self.lags.shape[0]

    def matrices(self, n_chunk: int, dtype, device):
        """Chunk matrices (cached per dtype and device)."""
        key = (n_chunk, dtype, str(device))
        if self._cache is None:
            self._cache = {}
        if key in self._cache:
            return self._cache[key]
        n, j = len(self.nodes), self.order
        d = n * j
        a = np.zeros((d, d))
        a[:n, :] = np.concatenate(list(self.lags), axis=1)
        a[n:, :-n] = np.eye(d - n)
        e = np.zeros((d, n))
        e[:n] = np.eye(n)
        powers = [np.eye(d)]
        for _ in range(n_chunk):
            powers.append(a @ powers[-1])
        h = [powers[m][:n] @ e for m in range(n_chunk)]  # (N, N) impulse responses
        toeplitz = np.zeros((n_chunk * n, n_chunk * n))
        for i in range(n_chunk):
            for l in range(i + 1):
                toeplitz[i * n:(i + 1) * n, l * n:(l + 1) * n] = h[i - l]
        from_state = np.concatenate([powers[i + 1][:n] for i in range(n_chunk)], axis=0)  # (L N, D)
        to_state = np.concatenate([powers[n_chunk - 1 - l] @ e for l in range(n_chunk)], axis=1)  # (D, L N)
        t = lambda m: torch.as_tensor(m, dtype=dtype, device=device)  # noqa: E731
        out = (t(toeplitz), t(from_state), t(to_state), t(powers[n_chunk]), None)
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
        """
        nodes, n, j, t0 = self.nodes, len(self.nodes), self.order, self.t0
        ref = history[nodes[0]][0]
        n_s = ref.shape[0]
        feat = ref[0].numel()
        width = n_s * feat
        n_rest = n_t - t0
        n_chunk = min(_CHUNK, n_rest)
        n_chunks = -(-n_rest // n_chunk)
        toeplitz, from_state, to_state, a_l, _ = self.matrices(n_chunk, ref.dtype, ref.device)
        # v[t] = (I - A_0)^-1 u[t] for t >= t0, time-major: (chunks * L, N, sample * feat).
        v = ref.new_zeros((n_chunks * n_chunk, n, n_s, feat))
        for i in range(n):
            for m, terms in self.ext_taps.items():
                coeff_m = float(self.mix[i, m])
                if coeff_m == 0.0:
                    continue
                for edge, tap, weight in terms:
                    x = external[edge].reshape(n_s, n_t, feat)[:, t0 - tap : n_t - tap]
                    v[:n_rest, i].add_(x.transpose(0, 1), alpha=coeff_m * weight)
        v = v.view(n_chunks, n_chunk * n, width)
        y = torch.matmul(toeplitz, v)  # zero-state response, (chunks, L N, width)
        pushed = torch.matmul(to_state, v)  # (chunks, D, width)
        state = torch.stack([history[nodes[i]][t0 - 1 - lag].reshape(width)
                             for lag in range(j) for i in range(n)], dim=0)
        states = []
        for c in range(n_chunks):
            states.append(state)
            state = torch.addmm(pushed[c], a_l, state)
        y = torch.baddbmm(y, from_state.expand(n_chunks, *from_state.shape), torch.stack(states, dim=0))
        y = y.view(n_chunks * n_chunk, n, n_s, feat)
        out = {}
        for i, name in enumerate(nodes):
            trace = ref.new_empty((n_s, n_t, feat))
            trace[:, :t0] = torch.stack(history[name], dim=1).reshape(n_s, t0, feat)
            trace[:, t0:] = y[:n_rest, i].transpose(0, 1)
            out[name] = trace.view(n_s, n_t, *shapes[name])
        return out


def analyse_loop(nodes: list[str], plan, specs, delays) -> LinearLoop | None:
    """The :class:`LinearLoop` of a cycle, or None if it is not linear with fixed whole-step delays."""
    taps = {}
    for name in nodes:
        t = specs[name].linear_taps()
        if t is None:
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
