"""Recurrent cells written as the textbook equations, and multi-layer layers built from them.

Three cells, each a function of one time step (``rnn_step``, ``lstm_step``, ``gru_step``) wrapped
in a module that owns its weights (``RNNCell``, ``LSTMCell``, ``GRUCell``):

* vanilla RNN: h_t = tanh(W_h h_{t-1} + W_x x_t + b_h) (or ReLU in place of tanh, as
  ``torch.nn.RNN(nonlinearity="relu")``); the output y_t = W_y h_t + b_y is the model's output
  layer, not part of the cell;
* LSTM: f_t, i_t, o_t = sigma(W_{f,i,o} [h_{t-1}, x_t] + b), C~_t = tanh(W_C [h_{t-1}, x_t] + b_C),
  C_t = f_t * C_{t-1} + i_t * C~_t, h_t = o_t * tanh(C_t);
* GRU: z_t, r_t = sigma(W_{z,r} [h_{t-1}, x_t]), h~_t = tanh(W [r_t * h_{t-1}, x_t]),
  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t (Cho et al. 2014, ``reset="before"``) or with the reset
  gate after the hidden projection, h~_t = tanh(W_x x_t + r_t * (W_h h_{t-1} + b_h)) (PyTorch and
  cuDNN, ``reset="after"``).

Weights use PyTorch's layout, so the same numbers load into either implementation: W [h, x] is
split as W_x x + W_h h, stored as ``weight_ih`` (gates stacked on the rows) and ``weight_hh``, each
with its own bias (b = b_ih + b_hh). Gate order on the rows: LSTM i, f, C~, o; GRU r, u, n.

GRU update gate. PyTorch's gate u_t = sigma(W_u [h_{t-1}, x_t]) weighs the *old* state,
h_t = u_t * h_{t-1} + (1 - u_t) * h~_t; the textbook z_t weighs the *new* one. They are the same
model with z_t = 1 - u_t = sigma(-W_u [h_{t-1}, x_t]), i.e. W_z = -W_u. We keep PyTorch's weights
(so checkpoints interchange) and write the textbook equation with z_t = 1 - u_t.

:class:`ExplicitRecurrent` unrolls the cells over a (B, T, E) batch: several layers, both
directions, right-padded variable lengths. Its parameter names equal those of ``torch.nn.LSTM``
and friends (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so ``load_state_dict`` moves weights
either way; :meth:`ExplicitRecurrent.from_torch` and :meth:`ExplicitRecurrent.to_torch` wrap that.
:class:`FusedRNN`, :class:`FusedLSTM`, :class:`FusedGRU` are the PyTorch layers with the same call
signature; they run variable lengths exactly through the fused kernel, one call per length among
the rows, which on CPU is much faster than packing the whole batch; on an accelerator they pack
it (one cuDNN call, no per-length loop). :func:`make_recurrent` picks one from a config switch.

States use PyTorch's layout: h is (layers * directions, B, H); the LSTM state is the pair (h, C).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "ExplicitRecurrent",
    "FusedGRU",
    "FusedLSTM",
    "FusedRNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "RecurrentState",
    "gru_step",
    "lstm_step",
    "make_recurrent",
    "rnn_step",
    "state_to_batch_first",
    "state_to_layer_first",
]

RecurrentState = Tensor | tuple[Tensor, Tensor]
"""h (L*D, B, H), or (h, C) for an LSTM."""

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# --------------------------------------------------------------------------------------------
# one time step


def rnn_step(x_t: Tensor, h_prev: Tensor, W_x: Tensor, W_h: Tensor, b_x: Tensor, b_h: Tensor, *,
             nonlinearity: str = "tanh") -> Tensor:
    """h_t = tanh(W_h h_{t-1} + W_x x_t + b_h), with the bias split as b_x + b_h.

    Args:
        x_t: (B, E) input at step t.
        h_prev: (B, H) hidden state h_{t-1}.
        W_x: (H, E); W_h: (H, H); b_x, b_h: (H,).
        nonlinearity: ``"tanh"`` or ``"relu"`` (h_t = max(0, ...)).

    Returns:
        (B, H) h_t.
    """
    a_t = F.linear(h_prev, W_h, b_h) + F.linear(x_t, W_x, b_x)
    if nonlinearity == "relu":
        return torch.relu(a_t)
    if nonlinearity != "tanh":
        raise ValueError(f"RNN nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return torch.tanh(a_t)


def lstm_step(
    x_t: Tensor, state: tuple[Tensor, Tensor], W_x: Tensor, W_h: Tensor, b_x: Tensor, b_h: Tensor
) -> tuple[Tensor, Tensor]:
    """One LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    W [h_{t-1}, x_t] + b is computed as W_h h_{t-1} + W_x x_t + b_h + b_x for the four gates at
    once (rows i, f, C~, o), then::

        f_t  = sigma(W_f [h_{t-1}, x_t] + b_f)
        i_t  = sigma(W_i [h_{t-1}, x_t] + b_i)
        C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)
        C_t  = f_t * C_{t-1} + i_t * C~_t
        o_t  = sigma(W_o [h_{t-1}, x_t] + b_o)
        h_t  = o_t * tanh(C_t)

    Args:
        x_t: (B, E). state: (h_{t-1}, C_{t-1}), each (B, H).
        W_x: (4H, E); W_h: (4H, H); b_x, b_h: (4H,).

    Returns:
        (h_t, C_t), each (B, H).
    """
    h_prev, C_prev = state
    a_i, a_f, a_C, a_o = (F.linear(h_prev, W_h, b_h) + F.linear(x_t, W_x, b_x)).chunk(4, dim=-1)
    f_t = torch.sigmoid(a_f)
    i_t = torch.sigmoid(a_i)
    C_tilde = torch.tanh(a_C)
    C_t = f_t * C_prev + i_t * C_tilde
    o_t = torch.sigmoid(a_o)
    h_t = o_t * torch.tanh(C_t)
    return h_t, C_t


def gru_step(
    x_t: Tensor, h_prev: Tensor, W_x: Tensor, W_h: Tensor, b_x: Tensor, b_h: Tensor, *, reset: str = "after"
) -> Tensor:
    """One GRU step (Cho et al. 2014), rows of the weights ordered r, u, n::

        r_t  = sigma(W_r [h_{t-1}, x_t])
        z_t  = 1 - u_t,  u_t = sigma(W_u [h_{t-1}, x_t])     # textbook update gate (W_z = -W_u)
        h~_t = tanh(W_xn x_t + b_xn + W_hn (r_t * h_{t-1}) + b_hn)      reset="before" (Cho)
        h~_t = tanh(W_xn x_t + b_xn + r_t * (W_hn h_{t-1} + b_hn))      reset="after" (PyTorch)
        h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

    ``before`` resets h_{t-1} before it is projected, as in the paper; ``after`` resets the
    projection, which lets cuDNN compute W_h h_{t-1} for all gates in one matrix product. The two
    are different functions of the same weights.

    Args:
        x_t: (B, E). h_prev: (B, H).
        W_x: (3H, E); W_h: (3H, H); b_x, b_h: (3H,).
        reset: ``"after"`` or ``"before"``.

    Returns:
        (B, H) h_t.
    """
    W_xr, W_xu, W_xn = W_x.chunk(3, dim=0)
    b_xr, b_xu, b_xn = b_x.chunk(3, dim=0)
    W_hr, W_hu, W_hn = W_h.chunk(3, dim=0)
    b_hr, b_hu, b_hn = b_h.chunk(3, dim=0)
    r_t = torch.sigmoid(F.linear(h_prev, W_hr, b_hr) + F.linear(x_t, W_xr, b_xr))
    u_t = torch.sigmoid(F.linear(h_prev, W_hu, b_hu) + F.linear(x_t, W_xu, b_xu))
    z_t = 1.0 - u_t
    if reset == "before":
        h_tilde = torch.tanh(F.linear(x_t, W_xn, b_xn) + F.linear(r_t * h_prev, W_hn, b_hn))
    elif reset == "after":
        h_tilde = torch.tanh(F.linear(x_t, W_xn, b_xn) + r_t * F.linear(h_prev, W_hn, b_hn))
    else:
        raise ValueError(f"GRU reset must be 'after' or 'before', got {reset!r}")
    return (1.0 - z_t) * h_prev + z_t * h_tilde


def _step(mode: str, x_t: Tensor, state: tuple[Tensor, ...], weights: tuple[Tensor, ...], reset: str,
          nonlinearity: str = "tanh"):
    """Dispatch one step; ``state`` is (h,) or (h, C). Returns the new state tuple."""
    if mode == "lstm":
        return lstm_step(x_t, state, *weights)
    if mode == "gru":
        return (gru_step(x_t, state[0], *weights, reset=reset),)
    return (rnn_step(x_t, state[0], *weights, nonlinearity=nonlinearity),)


# --------------------------------------------------------------------------------------------
# cell modules (same parameter names as torch.nn.RNNCell / LSTMCell / GRUCell)


class _Cell(nn.Module):
    mode = "rnn"

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        gates = GATES[self.mode]
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(gates * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W_x, W_h, b_x, b_h)."""
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


class RNNCell(_Cell):
    """Elman cell, :func:`rnn_step`. forward((B, E), (B, H)) -> (B, H)."""

    mode = "rnn"

    def forward(self, x_t: Tensor, h_prev: Tensor) -> Tensor:
        return rnn_step(x_t, h_prev, *self.weights())


class LSTMCell(_Cell):
    """LSTM cell, :func:`lstm_step`. forward((B, E), (h, C)) -> (h_t, C_t)."""

    mode = "lstm"

    def forward(self, x_t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return lstm_step(x_t, state, *self.weights())


class GRUCell(_Cell):
    """GRU cell, :func:`gru_step`; ``reset`` is ``"after"`` (PyTorch) or ``"before"`` (Cho et al.)."""

    mode = "gru"

    def __init__(self, input_size: int, hidden_size: int, *, reset: str = "after"):
        super().__init__(input_size, hidden_size)
        self.reset = reset

    def forward(self, x_t: Tensor, h_prev: Tensor) -> Tensor:
        return gru_step(x_t, h_prev, *self.weights(), reset=self.reset)


# --------------------------------------------------------------------------------------------
# multi-layer, bidirectional, variable-length layers


class ExplicitRecurrent(nn.Module):
    """Several layers of textbook cells unrolled in Python, optionally in both directions.

    Same parameters (names, shapes, meaning) and same call as ``torch.nn.RNN/LSTM/GRU`` with
    ``batch_first=True`` and packed variable lengths. Padded steps leave the state unchanged and
    output zeros; the reverse direction starts at each row's last real token.

    Set ``record_states = True`` to keep every step's hidden state: after a forward,
    ``recorded_states[layer][direction]`` is the list of h_t (B, H) in time order, the very
    tensors of the autograd graph (call ``retain_grad()`` on them to inspect dL/dh_t).

    Args:
        mode: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        input_size: E. hidden_size: H (per direction).
        num_layers: stacked layers. bidirectional: add a right-to-left direction.
        dropout: dropout on the outputs of every layer but the last (training only).
        gru_reset: ``"after"`` or ``"before"``, see :func:`gru_step`.
        nonlinearity: ``"tanh"`` or ``"relu"`` for the vanilla RNN, see :func:`rnn_step`.
    """

    def __init__(
        self, mode: str, input_size: int, hidden_size: int, *, num_layers: int = 1,
        bidirectional: bool = False, dropout: float = 0.0, gru_reset: str = "after", nonlinearity: str = "tanh"
    ):
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"mode must be one of {', '.join(GATES)}, got {mode!r}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bidirectional, self.dropout = num_layers, bidirectional, dropout
        self.gru_reset, self.nonlinearity = gru_reset, nonlinearity
        self.num_directions = 2 if bidirectional else 1
        self.record_states = False
        self.recorded_states: list[list[list[Tensor]]] = []
        gates, bound = GATES[mode], 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for direction in range(self.num_directions):
                shapes = {"weight_ih": (layer_input,), "weight_hh": (hidden_size,), "bias_ih": (), "bias_hh": ()}
                for name, shape in shapes.items():  # (G*H, in), (G*H, H), (G*H,), (G*H,) as in torch
                    weight = torch.empty(gates * hidden_size, *shape).uniform_(-bound, bound)
                    self.register_parameter(name + self._suffix(layer, direction), nn.Parameter(weight))

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def cell_weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W_x, W_h, b_x, b_h) of one layer and direction (0 = left to right)."""
        s = self._suffix(layer, direction)
        return tuple(getattr(self, name + s) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: RecurrentState | None = None
    ) -> tuple[Tensor, RecurrentState]:
        """Run all layers.

        Args:
            x: (B, T, E) inputs, right-padded.
            lengths: (B,) real lengths, or None when every row has T steps.
            state: initial state, h (L*D, B, H) or (h, C); zeros when None.

        Returns:
            outputs (B, T, D*H) of the top layer (zeros at padding), and the final state in the
            same layout as ``state`` (each direction's state after its last real step).
        """
        B, T, _ = x.shape
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        if lengths is None:
            valid = x.new_ones(B, T, dtype=torch.bool)
        else:
            valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (B, T)
        if state is None:
            zeros = x.new_zeros(L * D, B, H)
            initial = (zeros, zeros) if self.mode == "lstm" else (zeros,)
        else:
            initial = tuple(state) if self.mode == "lstm" else (state,)
        self.recorded_states = []
        finals: list[tuple[Tensor, ...]] = []
        layer_input = x
        for layer in range(L):
            outputs, recorded = [], []
            for direction in range(D):
                k = layer * D + direction
                state_k = tuple(s[k] for s in initial)
                out, final, states = self._run_direction(layer_input, valid, state_k, layer, direction)
                outputs.append(out)
                finals.append(final)
                recorded.append(states)
            if self.record_states:
                self.recorded_states.append(recorded)
            layer_input = torch.cat(outputs, dim=-1)  # (B, T, D*H)
            if layer < L - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        final = tuple(torch.stack([f[i] for f in finals], dim=0) for i in range(len(initial)))  # (L*D, B, H)
        return layer_input, (final if self.mode == "lstm" else final[0])

    def _run_direction(
        self, x: Tensor, valid: Tensor, state: tuple[Tensor, ...], layer: int, direction: int
    ) -> tuple[Tensor, tuple[Tensor, ...], list[Tensor]]:
        """One layer, one direction over (B, T, E); returns outputs (B, T, H), final state, h_t list."""
        weights = self.cell_weights(layer, direction)
        T = x.size(1)
        steps = range(T - 1, -1, -1) if direction == 1 else range(T)
        outputs: list[Tensor] = [None] * T  # type: ignore[list-item]
        h_list: list[Tensor] = [None] * T  # type: ignore[list-item]
        for t in steps:
            new = _step(self.mode, x[:, t], state, weights, self.gru_reset, self.nonlinearity)
            m_t = valid[:, t, None]  # (B, 1): padded rows keep their state
            state = tuple(torch.where(m_t, n, s) for n, s in zip(new, state))
            h_list[t] = state[0]  # h_t: feeds both step t+1 and the output y_t
            outputs[t] = torch.where(m_t, state[0], torch.zeros_like(state[0]))
        return torch.stack(outputs, dim=1), state, (h_list if self.record_states else [])

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> ExplicitRecurrent:
        """An explicit copy of a ``torch.nn.RNN`` (tanh or ReLU), ``LSTM`` or ``GRU``, weights included."""
        nonlinearity = getattr(module, "nonlinearity", "tanh")  # only nn.RNN has one
        layer = cls(_torch_mode(module), module.input_size, module.hidden_size, nonlinearity=nonlinearity,
                    **_layout(module))
        layer.load_state_dict(module.state_dict())
        return layer.to(next(module.parameters()).device)

    def to_torch(self) -> nn.RNNBase:
        """The fused equivalent (:class:`FusedRNN` / ``LSTM`` / ``GRU``) with these weights."""
        if self.mode == "gru" and self.gru_reset != "after":
            raise ValueError("a GRU with the reset gate before the projection has no fused equivalent")
        extra = {"nonlinearity": self.nonlinearity} if self.mode == "rnn" else {}
        fused = FUSED[self.mode](self.input_size, self.hidden_size, batch_first=True, **_layout(self), **extra)
        fused.load_state_dict(self.state_dict())
        return fused.to(next(self.parameters()).device)

    def extra_repr(self) -> str:
        reset = f", gru_reset={self.gru_reset}" if self.mode == "gru" else ""
        reset += f", nonlinearity={self.nonlinearity}" if self.mode == "rnn" else ""
        return f"{self.mode}, {self.input_size}, {self.hidden_size}, {_layout(self)}{reset}"


def _layout(module: nn.Module) -> dict:
    return dict(num_layers=module.num_layers, bidirectional=module.bidirectional, dropout=module.dropout)


def _torch_mode(module: nn.RNNBase) -> str:
    if isinstance(module, nn.LSTM):
        if module.proj_size:
            raise ValueError("LSTM with proj_size has no explicit equivalent")
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, nn.RNN):
        return "rnn"
    raise ValueError(f"cannot convert {type(module).__name__}; expected nn.RNN, nn.LSTM or nn.GRU")


class _VariableLengths:
    """forward(x, lengths, state) for the PyTorch layers, exact for right-padded variable lengths.

    Rows are grouped by length, and each group runs through all layers and both directions in one
    call of the fused kernel, on its real steps only::

        for each length n among the rows:  outputs, final[rows of length n] = layer(x[rows, :n], state[rows])

    A group has no padding, so each row's reverse direction starts at its own last token and each
    final state is the state after the row's own last step, exactly as with packing.

    Packing the whole batch (``pack_padded_sequence``) is just as exact, but a packed sequence takes
    PyTorch's step-by-step path on CPU, while a padded batch runs oneDNN's fused kernel over all
    layers and directions. On the recurrent benchmark's batches (64 rows of 12-16 tokens, five
    lengths) one call per length is within about 5% of a single inexact call on the padded batch.
    The batcher sorts examples by length, so a training batch has few lengths. A batch of one
    length is a single call, as for a full batch.

    Off the CPU the trade reverses: cuDNN runs a packed batch in one fused call, while grouping
    costs a host round trip (the lengths) plus one call, gather and scatter per length. There the
    whole batch is packed (:meth:`forward_packed`): one copy of the lengths to the host per call,
    one kernel, whatever the lengths. Both forms are exact, so only rounding can differ.
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: RecurrentState | None = None):
        """Same contract as :meth:`ExplicitRecurrent.forward`."""
        if lengths is None:
            return super().forward(x, state)
        if x.device.type != "cpu":
            return self.forward_packed(x, lengths, state)
        B, T, _ = x.shape
        sizes = lengths.tolist()
        if len(sizes) != B or min(sizes) < 1 or max(sizes) > T:
            raise ValueError(f"lengths must be {B} values in [1, {T}], got {sizes}")
        rows_of: dict[int, list[int]] = {}
        for row, n in enumerate(sizes):
            rows_of.setdefault(n, []).append(row)
        if len(rows_of) == 1:
            out, final = super().forward(x[:, : sizes[0]], state)  # (B, n, D*H)
            return F.pad(out, (0, 0, 0, T - sizes[0])), final  # (B, T, D*H), zeros at padding
        lstm = self.mode == "LSTM"
        states = () if state is None else (state if lstm else (state,))
        outputs, finals, order = [], [], []
        for n, rows in rows_of.items():
            index = torch.tensor(rows, device=x.device)
            group = tuple(s.index_select(1, index) for s in states)  # the rows' initial states
            group_state = None if not group else group if lstm else group[0]
            out, final = super().forward(x.index_select(0, index)[:, :n], group_state)  # (b, n, D*H)
            outputs.append(F.pad(out, (0, 0, 0, T - n)))  # (b, T, D*H), zeros at padding
            finals.append(final if lstm else (final,))
            order.extend(rows)
        unsort = torch.tensor(order, device=x.device).argsort()  # group order -> batch order
        out = torch.cat(outputs).index_select(0, unsort)  # (B, T, D*H)
        final = tuple(torch.cat([f[i] for f in finals], dim=1).index_select(1, unsort) for i in range(len(finals[0])))
        return out, (final if lstm else final[0])  # final: (L*D, B, H)

    def forward_packed(self, x: Tensor, lengths: Tensor, state: RecurrentState | None = None):
        """:meth:`forward` with the whole batch packed by length: one call of the fused kernel."""
        B, T, _ = x.shape
        sizes = lengths.to("cpu", torch.long)  # packing needs them on the host: one copy per call
        if sizes.shape != (B,) or int(sizes.min()) < 1 or int(sizes.max()) > T:
            raise ValueError(f"lengths must be {B} values in [1, {T}], got {sizes.tolist()}")
        packed = pack_padded_sequence(x, sizes, batch_first=True, enforce_sorted=False)
        out, final = super().forward(packed, state)  # the final state comes back in batch order
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*H), zeros at padding
        return out, final


class FusedRNN(_VariableLengths, nn.RNN):
    """``torch.nn.RNN`` (tanh) taking (x, lengths, state); build with ``batch_first=True``."""


class FusedLSTM(_VariableLengths, nn.LSTM):
    """``torch.nn.LSTM`` taking (x, lengths, state); build with ``batch_first=True``."""


class FusedGRU(_VariableLengths, nn.GRU):
    """``torch.nn.GRU`` taking (x, lengths, state); build with ``batch_first=True``."""


FUSED = {"rnn": FusedRNN, "lstm": FusedLSTM, "gru": FusedGRU}


def make_recurrent(
    mode: str, input_size: int, hidden_size: int, *, num_layers: int = 1, bidirectional: bool = False,
    dropout: float = 0.0, cells: str = "fused", gru_reset: str = "after", nonlinearity: str = "tanh"
) -> nn.Module:
    """A recurrent layer: fused PyTorch kernel or explicit cells, with identical parameters.

    ``nonlinearity`` (``"tanh"`` or ``"relu"``) applies to the vanilla RNN only.

    Both take ``(x (B, T, E), lengths (B,) | None, state | None)`` and return
    ``(outputs (B, T, D*H), final state)``.

    Raises:
        ValueError: ``cells="fused"`` with a GRU whose reset gate acts ``before`` the projection.
    """
    layout = dict(num_layers=num_layers, bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
    if cells == "explicit":
        return ExplicitRecurrent(mode, input_size, hidden_size, gru_reset=gru_reset, nonlinearity=nonlinearity,
                                 **layout)
    if cells != "fused":
        raise ValueError(f"cells must be 'fused' or 'explicit', got {cells!r}")
    if mode == "gru" and gru_reset != "after":
        raise ValueError("the fused GRU applies the reset gate after the projection; use explicit cells")
    if mode == "rnn":
        layout["nonlinearity"] = nonlinearity
    return FUSED[mode](input_size, hidden_size, batch_first=True, **layout)


def state_to_batch_first(state: RecurrentState) -> tuple[Tensor, Tensor | None]:
    """(h (L, B, H) or (h, C)) -> (h (B, L, H), C (B, L, H) or None), for a DecoderState."""
    if isinstance(state, tuple):
        h, C = state
        return h.transpose(0, 1), C.transpose(0, 1)
    return state.transpose(0, 1), None


def state_to_layer_first(h: Tensor, C: Tensor | None) -> RecurrentState:
    """Inverse of :func:`state_to_batch_first`: (B, L, H) -> (L, B, H), contiguous for cuDNN."""
    h_l = h.transpose(0, 1).contiguous()  # (L, B, H)
    return h_l if C is None else (h_l, C.transpose(0, 1).contiguous())
