"""Sequences against PyTorch's own modules, with mapped weights, in float64 (relative 1e-10): ``nn.RNN``,
``nn.LSTM`` and ``nn.GRU`` in one and two directions (outputs, final states, the gradients of the inputs,
the initial states and every parameter), masked batches against ``pack_padded_sequence``, ``nn.Embedding``,
``nn.Conv1d`` and ``nn.LayerNorm``, and a whole LSTM language model over several steps of Adam with
``global_clipnorm`` (``clip_grad_norm_`` then ``torch.optim.Adam``). Also finite differences of masked
models, bitwise reproducible seeded training with dropout, and the bad input of the issue.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import neuro
from neuro import (
    GRU,
    LSTM,
    Bidirectional,
    Conv1D,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    Input,
    LayerNormalization,
    Masking,
    Model,
    SimpleRNN,
)

RTOL = 1e-10


def _close(actual, expected, what, rtol=RTOL):
    actual = np.asarray(neuro.to_numpy(actual))
    expected = np.asarray(expected)
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err < rtol, f"{what}: relative error {err:.2e}"


def _gru_torch_order(a, u):
    """Keras's z, r, h column blocks as PyTorch's r, z, n (the last axis)."""
    return np.concatenate([a[..., u : 2 * u], a[..., :u], a[..., 2 * u :]], axis=-1)


def _load_into_torch(torch, layer, module, suffix=""):
    """Copy a neuro recurrent layer's weights into a torch nn.RNN/LSTM/GRU (layer 0, direction suffix)."""
    p = {k: neuro.to_numpy(v) for k, v in layer.params.items()}
    u = layer.units
    W, U = p["kernel"], p["recurrent_kernel"]
    if isinstance(layer, GRU):
        b_ih, b_hh = _gru_torch_order(p["bias"][0], u), _gru_torch_order(p["bias"][1], u)
        W, U = _gru_torch_order(W, u), _gru_torch_order(U, u)
    else:
        b_ih, b_hh = p["bias"], np.zeros_like(p["bias"])
    with torch.no_grad():
        getattr(module, f"weight_ih_l0{suffix}").copy_(torch.tensor(W.T))
        getattr(module, f"weight_hh_l0{suffix}").copy_(torch.tensor(U.T))
        getattr(module, f"bias_ih_l0{suffix}").copy_(torch.tensor(b_ih))
        getattr(module, f"bias_hh_l0{suffix}").copy_(torch.tensor(b_hh))


def _torch_grads(torch, layer, module, suffix=""):
    """The torch module's parameter gradients in neuro's layout and names."""
    u = layer.units
    gw = getattr(module, f"weight_ih_l0{suffix}").grad.numpy().T
    gu = getattr(module, f"weight_hh_l0{suffix}").grad.numpy().T
    gbi = getattr(module, f"bias_ih_l0{suffix}").grad.numpy()
    gbh = getattr(module, f"bias_hh_l0{suffix}").grad.numpy()
    if isinstance(layer, GRU):
        back = lambda a: np.concatenate([a[..., u : 2 * u], a[..., :u], a[..., 2 * u :]], axis=-1)  # noqa: E731
        return {"kernel": back(gw), "recurrent_kernel": back(gu), "bias": np.stack([back(gbi), back(gbh)])}
    return {"kernel": gw, "recurrent_kernel": gu, "bias": gbi}  # the two torch biases are one here


MODULES = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_recurrent_layers_equal_torch_with_states_and_initial_states(kind, float64, torch):
    rng = np.random.default_rng(0)
    n, steps, features, u = 4, 6, 3, 5
    layer = getattr(neuro, kind)(u, return_sequences=True, return_state=True)
    n_states = 2 if kind == "LSTM" else 1
    layer.build([(steps, features)] + [(u,)] * n_states, rng, np.float64)
    layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape) * 0.3
    module = getattr(torch.nn, MODULES[kind])(features, u, batch_first=True).double()
    _load_into_torch(torch, layer, module)
    x = rng.standard_normal((n, steps, features))
    init = [rng.standard_normal((n, u)) * 0.5 for _ in range(n_states)]
    y, ctx = layer.forward([x, *init], training=True)
    grads = [rng.standard_normal(a.shape) for a in y]
    layer.clear_grads()
    dx = layer.backward(tuple(grads), ctx)
    tx = torch.tensor(x, requires_grad=True)
    ti = [torch.tensor(a[None], requires_grad=True) for a in init]
    tout, tstate = module(tx, ti[0] if kind != "LSTM" else tuple(ti))
    tstates = [tstate] if kind != "LSTM" else list(tstate)
    _close(y[0], tout.detach().numpy(), "outputs")
    for k, (a, b) in enumerate(zip(y[1:], tstates, strict=True)):
        _close(a, b.detach().numpy()[0], f"state {k}")
    total = (tout * torch.tensor(grads[0])).sum() + sum(
        (s[0] * torch.tensor(g)).sum() for s, g in zip(tstates, grads[1:], strict=True)
    )
    total.backward()
    _close(dx[0], tx.grad.numpy(), "dL/dx")
    for k, t in enumerate(ti):
        _close(dx[1 + k], t.grad.numpy()[0], f"dL/d initial state {k}")
    for k, g in _torch_grads(torch, layer, module).items():
        _close(layer.grads[k], g, k)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_equals_a_two_direction_torch_module(kind, float64, torch):
    rng = np.random.default_rng(1)
    n, steps, features, u = 3, 5, 2, 4
    bi = Bidirectional(getattr(neuro, kind)(u, return_sequences=True))
    bi.build((steps, features), rng, np.float64)
    for sub in (bi.forward_layer, bi.backward_layer):
        sub.params["bias"][...] = rng.standard_normal(sub.params["bias"].shape) * 0.3
    module = getattr(torch.nn, kind)(features, u, batch_first=True, bidirectional=True).double()
    _load_into_torch(torch, bi.forward_layer, module)
    _load_into_torch(torch, bi.backward_layer, module, "_reverse")
    x = rng.standard_normal((n, steps, features))
    y, ctx = bi.forward(x, training=True)
    g = rng.standard_normal(y.shape)
    bi.clear_grads()
    dx = bi.backward(g, ctx)
    tx = torch.tensor(x, requires_grad=True)
    tout, _ = module(tx)
    _close(y, tout.detach().numpy(), "outputs")
    (tout * torch.tensor(g)).sum().backward()
    _close(dx, tx.grad.numpy(), "dL/dx")
    for sub, suffix in ((bi.forward_layer, ""), (bi.backward_layer, "_reverse")):
        for k, tg in _torch_grads(torch, sub, module, suffix).items():
            _close(sub.grads[k], tg, f"{sub.name}.{k}")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_initial_states_are_split_as_keras_and_torch_do(kind, float64, torch):
    """Initial states: the forward layer's, then the backward layer's (Keras's order, and torch's h0 of a
    two-direction module); each half gets its own layer's gradient."""
    rng = np.random.default_rng(4)
    n, steps, features, u = 3, 5, 2, 4
    n_states = 2 if kind == "LSTM" else 1
    bi = Bidirectional(getattr(neuro, kind)(u, return_sequences=True))
    bi.build([(steps, features)] + [(u,)] * (2 * n_states), rng, np.float64)
    module = getattr(torch.nn, kind)(features, u, batch_first=True, bidirectional=True).double()
    _load_into_torch(torch, bi.forward_layer, module)
    _load_into_torch(torch, bi.backward_layer, module, "_reverse")
    x = rng.standard_normal((n, steps, features))
    states = [rng.standard_normal((n, u)) * 0.5 for _ in range(2 * n_states)]  # h_f, (c_f), h_b, (c_b)
    y, ctx = bi.forward([x, *states], training=True)
    g = rng.standard_normal(y.shape)
    bi.clear_grads()
    dx = bi.backward(g, ctx)
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(np.stack([states[k], states[n_states + k]]), requires_grad=True) for k in range(n_states)]
    tout, _ = module(tx, ts[0] if kind == "GRU" else tuple(ts))
    _close(y, tout.detach().numpy(), "outputs")
    (tout * torch.tensor(g)).sum().backward()
    _close(dx[0], tx.grad.numpy(), "dL/dx")
    for k in range(n_states):
        _close(dx[1 + k], ts[k].grad.numpy()[0], f"dL/d forward state {k}")
        _close(dx[1 + n_states + k], ts[k].grad.numpy()[1], f"dL/d backward state {k}")


def test_bidirectional_initial_states_in_a_graph_model_pass_finite_differences(float64):
    seq, h_f, h_b = Input((4, 2), name="seq"), Input((3,), name="h_f"), Input((3,), name="h_b")
    out = Dense(1)(Bidirectional(GRU(3))(seq, initial_state=[h_f, h_b]))
    model = Model([seq, h_f, h_b], out, loss="mse", optimizer="sgd", seed=0)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 3)), rng.standard_normal((3, 3))]
    report = neuro.check_gradients(model, xs, rng.standard_normal((3, 1)))
    assert any(name.startswith("input h_b") for name in report.errors)
    assert report.max_error < 1e-6, report
    with pytest.raises(ValueError, match=r"Bidirectional\(GRU\) takes 2 initial states \(the forward layer's 1, "
                                         r"then the backward layer's 1\), got 1"):
        Bidirectional(GRU(3))(seq, initial_state=[h_f])


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_batches_equal_packed_sequences(kind, bidirectional, float64, torch):
    """Right-padded sequences with a mask (Masking) against pack_padded_sequence: the outputs of the padding
    steps are 0, the final states those of each sequence's last valid step, and the gradients agree."""
    rng = np.random.default_rng(2)
    n, steps, features, u = 4, 6, 3, 4
    lengths = np.array([6, 3, 1, 4])
    x = rng.standard_normal((n, steps, features))
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0
    inp = Input((steps, features))
    rnn = getattr(neuro, kind)(u, return_sequences=True, zero_output_for_mask=True)
    layer = Bidirectional(rnn) if bidirectional else rnn
    h = layer(Masking()(inp))
    model = Model(inp, h, seed=3)
    module = getattr(torch.nn, MODULES[kind])(features, u, batch_first=True, bidirectional=bidirectional).double()
    if bidirectional:
        _load_into_torch(torch, layer.forward_layer, module)
        _load_into_torch(torch, layer.backward_layer, module, "_reverse")
    else:
        _load_into_torch(torch, layer, module)
    tx = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    tout, _ = module(packed)
    tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=True, total_length=steps)
    g = rng.standard_normal(tout.shape)
    (tout * torch.tensor(g)).sum().backward()
    outs, tape = model.graph.forward([x], True, model._device_rng)
    _close(outs[0], tout.detach().numpy(), "outputs")
    model.clear_grads()
    model.graph.set_input_gradients(True)
    dx = model.graph.backward(tape, [g])[0]
    _close(dx, tx.grad.numpy(), "dL/dx")
    subs = [(layer.forward_layer, ""), (layer.backward_layer, "_reverse")] if bidirectional else [(layer, "")]
    for sub, suffix in subs:
        for k, tg in _torch_grads(torch, sub, module, suffix).items():
            _close(sub.grads[k], tg, f"{sub.name}.{k}")


def test_embedding_conv1d_and_layer_norm_equal_torch_modules(float64, torch):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 9, (4, 7))
    emb = Embedding(9, 5)
    emb.build((7,), rng, np.float64)
    temb = torch.nn.Embedding(9, 5).double()
    with torch.no_grad():
        temb.weight.copy_(torch.tensor(emb.params["embeddings"]))
    y, ctx = emb.forward(ids, training=True)
    g = rng.standard_normal(y.shape)
    emb.backward(g, ctx)
    ty = temb(torch.tensor(ids))
    (ty * torch.tensor(g)).sum().backward()
    _close(y, ty.detach().numpy(), "embedding")
    _close(emb.grads["embeddings"], temb.weight.grad.numpy(), "embedding gradient")
    for padding, stride, dilation in (("valid", 1, 1), ("same", 1, 2), ("same", 2, 1), ("causal", 1, 3)):
        conv = Conv1D(4, 3, strides=stride, padding=padding, dilation_rate=dilation)
        conv.build((10, 5), rng, np.float64)
        x = rng.standard_normal((3, 10, 5))
        y, ctx = conv.forward(x, training=True)
        g = rng.standard_normal(y.shape)
        dx = conv.backward(g, ctx)
        from neuro.functional.sequence import conv1d_pads

        left, right = conv1d_pads(padding, 10, 3, stride, dilation)
        tconv = torch.nn.Conv1d(5, 4, 3, stride=stride, dilation=dilation).double()
        with torch.no_grad():
            tconv.weight.copy_(torch.tensor(conv.params["kernel"].transpose(2, 1, 0)))
            tconv.bias.copy_(torch.tensor(conv.params["bias"]))
        tx = torch.tensor(x, requires_grad=True)
        ty = tconv(torch.nn.functional.pad(tx.permute(0, 2, 1), (left, right))).permute(0, 2, 1)
        (ty * torch.tensor(g)).sum().backward()
        _close(y, ty.detach().numpy(), f"conv1d {padding} {stride} {dilation}")
        _close(dx, tx.grad.numpy(), f"conv1d dx {padding}")
        _close(conv.grads["kernel"], tconv.weight.grad.numpy().transpose(2, 1, 0), f"conv1d dW {padding}")
    ln = LayerNormalization(epsilon=1e-5)
    ln.build((6, 4), rng, np.float64)
    ln.params["gamma"][...] = rng.uniform(0.5, 1.5, 4)
    ln.params["beta"][...] = rng.standard_normal(4)
    tln = torch.nn.LayerNorm(4, eps=1e-5).double()
    with torch.no_grad():
        tln.weight.copy_(torch.tensor(ln.params["gamma"]))
        tln.bias.copy_(torch.tensor(ln.params["beta"]))
    x = rng.standard_normal((3, 6, 4))
    y, ctx = ln.forward(x, training=True)
    g = rng.standard_normal(y.shape)
    dx = ln.backward(g, ctx)
    tx = torch.tensor(x, requires_grad=True)
    ty = tln(tx)
    (ty * torch.tensor(g)).sum().backward()
    _close(y, ty.detach().numpy(), "layer norm")
    _close(dx, tx.grad.numpy(), "layer norm dx")
    _close(ln.grads["gamma"], tln.weight.grad.numpy(), "layer norm dgamma")


def test_an_lstm_language_model_trains_as_torch_with_global_clipnorm(float64, torch):
    """Embedding → LSTM → Dense over every step, softmax cross-entropy per step, Adam with global_clipnorm:
    the weights after several steps equal clip_grad_norm_ followed by torch.optim.Adam."""
    rng = np.random.default_rng(4)
    vocab, steps, batch = 11, 8, 6
    ids = rng.integers(0, vocab, (batch * 4, steps + 1))
    x, y = ids[:, :-1], ids[:, 1:]
    inp = Input((steps,), dtype="int64")
    emb, lstm, dense = Embedding(vocab, 6), LSTM(7, return_sequences=True), Dense(vocab)
    model = Model(inp, dense(lstm(emb(inp))), loss="softmax_crossentropy",
                  optimizer=neuro.Adam(0.05, global_clipnorm=0.1), seed=5)

    class Torch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.e = torch.nn.Embedding(vocab, 6)
            self.l = torch.nn.LSTM(6, 7, batch_first=True)
            self.d = torch.nn.Linear(7, vocab)

        def forward(self, t):
            return self.d(self.l(self.e(t))[0])

    t = Torch().double()
    with torch.no_grad():
        t.e.weight.copy_(torch.tensor(emb.params["embeddings"]))
        t.d.weight.copy_(torch.tensor(dense.params["kernel"].T))
        t.d.bias.copy_(torch.tensor(dense.params["bias"]))
    _load_into_torch(torch, lstm, t.l)
    t.l.bias_hh_l0.requires_grad_(False)  # Keras's LSTM has one bias: torch's second one stays at 0
    opt = torch.optim.Adam([q for q in t.parameters() if q.requires_grad], lr=0.05)
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    norms = []
    for s in range(0, len(x), batch):
        opt.zero_grad()
        logits = t(torch.tensor(x[s : s + batch]))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), torch.tensor(y[s : s + batch]).reshape(-1))
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_([q for q in t.parameters() if q.requires_grad], 0.1).item())
        opt.step()
    assert min(norms) > 0.1  # the clipping acted at every step
    _close(emb.params["embeddings"], t.e.weight.detach().numpy(), "embeddings", rtol=1e-9)
    _close(dense.params["kernel"], t.d.weight.detach().numpy().T, "dense kernel", rtol=1e-9)
    _close(lstm.params["kernel"], t.l.weight_ih_l0.detach().numpy().T, "lstm kernel", rtol=1e-9)
    _close(lstm.params["recurrent_kernel"], t.l.weight_hh_l0.detach().numpy().T, "lstm recurrent", rtol=1e-9)
    _close(lstm.params["bias"], (t.l.bias_ih_l0 + t.l.bias_hh_l0).detach().numpy(), "lstm bias", rtol=1e-9)


def test_clipping_is_as_keras_and_torch(float64, torch):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((3, 4)) * 10, rng.standard_normal(5)]
    tg = [torch.tensor(g.copy()) for g in grads]
    for t_, g in zip(tg, grads, strict=True):
        t_.grad = torch.tensor(g.copy())
    torch.nn.utils.clip_grad_norm_(tg, 2.0)
    clipped = neuro.SGD(global_clipnorm=2.0).clip([g.copy() for g in grads])
    for a, t_ in zip(clipped, tg, strict=True):
        np.testing.assert_allclose(a, t_.grad.numpy(), rtol=1e-14)
    per = neuro.SGD(clipnorm=1.0).clip([g.copy() for g in grads])
    for a, g in zip(per, grads, strict=True):
        np.testing.assert_allclose(np.linalg.norm(a), min(1.0, np.linalg.norm(g)), rtol=1e-12)
    val = neuro.SGD(clipvalue=0.3).clip([g.copy() for g in grads])
    np.testing.assert_array_equal(val[0], np.clip(grads[0], -0.3, 0.3))
    with pytest.raises(ValueError, match="give clipnorm .* or global_clipnorm .*, not both"):
        neuro.Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="clipvalue must be a positive finite number, got -1"):
        neuro.RMSprop(clipvalue=-1)


def test_a_clipped_update_is_still_guarded():
    x = Input((3,))
    m = Model(x, Dense(1)(x), loss="mse", optimizer=neuro.SGD(1e37, clipvalue=100.0), seed=0)
    before = m.get_weights()
    with pytest.raises(FloatingPointError, match="the update made the weights or the optimizer state non-finite"):
        m.fit(np.full((4, 3), 100, dtype=np.float32), np.full((4, 1), 500.0), verbose=0)  # gradients clipped to 100
    for a, b in zip(before, m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_masked_models_pass_finite_differences_and_ignore_padding(kind):
    rng = np.random.default_rng(6)
    ids = rng.integers(1, 8, (5, 6))
    ids[0, 2:] = 0
    ids[3, 4:] = 0
    with neuro.backend.dtype_scope("float64"):
        inp = Input((6,), dtype="int64")
        h = Embedding(8, 4, mask_zero=True)(inp)
        h = Bidirectional(getattr(neuro, kind)(3, return_sequences=True), merge_mode="ave")(h)
        h = LayerNormalization()(h)
        seq = Dense(3, activation="softmax", name="tags")(h)
        pooled = Dense(2, activation="softmax", name="label")(GlobalAveragePooling1D()(h))
        model = Model(inp, [seq, pooled], loss="crossentropy", optimizer="sgd", seed=7)
    tags, labels = rng.integers(0, 3, (5, 6)), rng.integers(0, 2, 5)
    report = neuro.check_gradients(model, ids, [tags, labels])
    assert report.max_error < 1e-6, report
    # what padding holds does not matter: other tags at the padded steps change neither loss nor gradients
    loss = model.compute_gradients(ids, [tags, labels])
    grads = [g.copy() for g in model.grads]
    tags2 = tags.copy()
    tags2[ids == 0] = (tags2[ids == 0] + 1) % 3
    assert model.compute_gradients(ids, [tags2, labels]) == loss
    for a, b in zip(grads, model.grads, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_masked_loss_is_the_mean_over_valid_steps(float64, torch):
    rng = np.random.default_rng(8)
    ids = rng.integers(1, 6, (3, 4))
    ids[1, 2:] = 0
    inp = Input((4,), dtype="int64")
    out = Dense(5, activation="softmax")(Embedding(6, 3, mask_zero=True)(inp))
    model = Model(inp, out, loss="crossentropy", optimizer="sgd", seed=0)
    y = rng.integers(0, 5, (3, 4))
    p = neuro.to_numpy(model.predict(ids))
    valid = ids != 0
    expected = -np.log(np.take_along_axis(p, y[..., None], axis=-1)[..., 0])[valid].mean()
    assert model.evaluate(ids, y)["loss"] == pytest.approx(expected, rel=1e-12)
    # torch's ignore_index gives the same
    t = torch.tensor(np.log(p)).reshape(-1, 5)
    ty = torch.tensor(np.where(valid, y, -100)).reshape(-1)
    assert model.evaluate(ids, y)["loss"] == pytest.approx(torch.nn.functional.nll_loss(t, ty).item(), rel=1e-12)
    assert model.evaluate(ids, y)["accuracy"] == pytest.approx(
        (p.argmax(-1) == y)[valid].mean(), rel=1e-12
    )


def test_seeded_training_with_dropout_is_bitwise_reproducible():
    def run():
        inp = Input((10, 3))
        h = LSTM(6, dropout=0.3, recurrent_dropout=0.2, return_sequences=True)(inp)
        h = GRU(4, dropout=0.1)(h)
        m = Model(inp, Dense(2, activation="softmax")(h), loss="crossentropy", optimizer="adam", seed=11)
        rng = np.random.default_rng(0)
        m.fit(rng.standard_normal((32, 10, 3)), rng.integers(0, 2, 32), batch_size=8, epochs=2, verbose=0)
        return m.get_weights()

    for a, b in zip(run(), run(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- bad input --------------------------------------------------------------------------------------------
def test_bad_sequence_input_gets_clear_errors():
    inp = Input((5,), dtype="int64")
    m = Model(inp, Dense(2, activation="softmax")(GRU(3)(Embedding(10, 4)(inp))), loss="crossentropy",
              optimizer="sgd", seed=0)
    with pytest.raises(ValueError, match=r"x holds token ids from 0 to 12, but Embedding 'embedding' takes ids in \[0, 9\] \(input_dim=10\)"):
        m.predict(np.array([[0, 1, 2, 12, 3]]))
    with pytest.raises(ValueError, match=r"token ids from -1 to"):
        m.predict(np.array([[-1, 1, 2, 3, 3]]))
    with pytest.raises(TypeError, match=r"x must hold integer token ids for an input of dtype int64, got dtype float64"):
        m.predict(np.zeros((2, 5)))
    with pytest.raises(TypeError, match=r"Embedding 'e' takes integer token ids, got dtype float64"):
        e = Embedding(4, 2, name="e")
        e(np.zeros((2, 3)))
    # ids that do not fit the input's integer type are refused with the values given, not wrapped into range
    # by the cast (2**32 + 3 was read as id 3 by an int32 input; 2**64 − 1 reported as -1)
    small = Input((3,), dtype="int32")
    m32 = Model(small, neuro.Flatten()(Embedding(10, 2)(small)), seed=0)
    with pytest.raises(ValueError, match=r"x holds integers from 4 to 4294967299, which do not fit the input's "
                                         r"dtype int32 \(from -2147483648 to 2147483647\)"):
        m32.predict(np.array([[2**32 + 3, 4, 5]], dtype=np.int64))
    m32.predict(np.array([[3, 4, 5]], dtype=np.int64))  # in range: cast
    with pytest.raises(ValueError, match=r"x holds integers from 1 to 18446744073709551615, which do not fit "
                                         r"the input's dtype int64"):
        m.predict(np.array([[2**64 - 1, 1, 1, 1, 1]], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"Embedding 'e2' takes token ids in \[0, 3\] \(input_dim=4\), got ids from 0 to 7"):
        Embedding(4, 2, name="e2")(np.array([[0, 7]]))
    with pytest.raises(ValueError, match=r"layer 'lstm' \(LSTM\) cannot take input of shape \(None, 8\): LSTM expects input_shape "
                                         r"\(timesteps, features\) per sample, got \(8,\)"):
        LSTM(3)(Input((8,)))
    with pytest.raises(ValueError, match=r"layer 'conv1d' \(Conv1D\) cannot take the mask that \['embedding'\] carries"):
        i2 = Input((5,), dtype="int64")
        Conv1D(2, 2)(Embedding(5, 3, mask_zero=True)(i2))
    net = neuro.Network((4, 3), "mse", "sgd")
    with pytest.raises(ValueError, match=r"cannot add LSTM \(layer 0\): it returns 3 outputs \(return_state\?\); a chain "
                                         r"takes one output per layer"):
        net.add(LSTM(2, return_state=True))
    with pytest.raises(ValueError, match=r"x holds sequences of different lengths \(a ragged list\); pad them to one "
                                         r"length first"):
        m.predict([[1, 2, 3], [1, 2, 3, 4, 5]])
    tagger_in = Input((5,), dtype="int64")
    tagger = Model(tagger_in, Dense(3, activation="softmax")(Embedding(10, 4)(tagger_in)), loss="crossentropy",
                   optimizer="sgd", seed=0)
    with pytest.raises(ValueError, match=r"y must be class ids of shape \(N, 5\) or rows of shape \(N, 5, 3\) for an "
                                         r"output of shape \(None, 5, 3\), got shape \(2, 4\)"):
        tagger.fit(np.ones((2, 5), dtype=int), np.zeros((2, 4), dtype=int), verbose=0)
    with pytest.raises(TypeError, match=r"initial_state must be symbolic tensors"):
        LSTM(2)(Input((3, 2)), initial_state=[np.zeros((1, 2))])
    with pytest.raises(ValueError, match=r"LSTM takes 2 initial state\(s\) of shape \(None, 3\), got \[\(None, 4\)\]"):
        LSTM(3)(Input((3, 2)), initial_state=[Input((4,))])
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\), got 1.5"):
        GRU(2, dropout=1.5)
    with pytest.raises(ValueError, match=r"activation must be one of \['tanh', 'sigmoid', 'relu', 'linear'\], got 'softmax'"):
        SimpleRNN(2, activation="softmax")
    with pytest.raises(ValueError, match=r"padding must be one of \('valid', 'same', 'causal'\), got 'full'"):
        Conv1D(2, 3, padding="full")


def test_initial_states_as_tensors_in_a_graph_model_and_states_as_outputs():
    """An encoder's final states start a decoder (a sequence-to-sequence model)."""
    rng = np.random.default_rng(9)
    enc_in, dec_in = Input((5, 3), name="source"), Input((4, 2), name="target_in")
    _, h, c = LSTM(6, return_state=True)(enc_in)
    dec = LSTM(6, return_sequences=True)(dec_in, initial_state=[h, c])
    model = Model([enc_in, dec_in], Dense(3, activation="softmax")(dec), loss="crossentropy", optimizer="adam", seed=1)
    xs = [rng.standard_normal((8, 5, 3)), rng.standard_normal((8, 4, 2))]
    model.fit(xs, rng.integers(0, 3, (8, 4)), epochs=2, batch_size=4, verbose=0)
    with neuro.backend.dtype_scope("float64"):
        e_in, d_in = Input((5, 3)), Input((4, 2))
        out, h2, c2 = LSTM(4, return_state=True, return_sequences=True)(e_in)
        d = GRU(4, return_sequences=True)(d_in, initial_state=[h2])
        m64 = Model([e_in, d_in], [Dense(2, activation="softmax")(d), Dense(1)(c2)], loss=["crossentropy", "mse"],
                    optimizer="sgd", seed=2)
    report = neuro.check_gradients(m64, xs, [rng.integers(0, 2, (8, 4)), rng.standard_normal((8, 1))])
    assert report.max_error < 1e-6, report


def _sequence_model(steps, device="numpy"):
    x = Input((steps,), dtype="int64")
    h = Embedding(9, 4, mask_zero=True)(x)
    h = Bidirectional(GRU(3, return_sequences=True, dropout=0.2))(h)
    h = LSTM(3, return_sequences=True, recurrent_dropout=0.2)(h)
    out = Dense(5, activation="softmax")(LayerNormalization()(h))
    return Model(x, out, loss="crossentropy", optimizer=neuro.Adam(global_clipnorm=1.0), seed=0, device=device)


def _sequence_data(steps, n=12):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 9, (n, steps))
    ids[::3, steps // 2 :] = 0
    return ids, rng.integers(0, 5, (n, steps))


def _strict_reads(steps):
    ids, y = _sequence_data(steps)
    model = _sequence_model(steps, "strict")
    before = neuro.backend.host_reads()
    model.fit(ids, y, batch_size=4, epochs=1, verbose=0)
    return neuro.backend.host_reads() - before


def test_sequence_training_on_the_strict_device_equals_numpy_and_reads_the_host_per_step_only():
    ids, y = _sequence_data(6)
    host, dev = _sequence_model(6), _sequence_model(6, "strict")
    h1 = host.fit(ids, y, batch_size=4, epochs=2, verbose=0)
    h2 = dev.fit(ids, y, batch_size=4, epochs=2, verbose=0)
    assert h1.history == h2.history
    for a, b in zip(host.get_weights(), dev.get_weights(), strict=True):
        np.testing.assert_array_equal(a, neuro.to_numpy(b))
    np.testing.assert_array_equal(neuro.to_numpy(dev.predict(ids)), host.predict(ids))
    # the host reads of an epoch do not depend on the number of time steps (none inside the time loop)
    assert _strict_reads(3) == _strict_reads(6) == _strict_reads(12)


@pytest.mark.parametrize("make", [lambda: LSTM(4), lambda: GRU(4), lambda: SimpleRNN(4),
                                  lambda: Bidirectional(LSTM(4)), lambda: GRU(4, reset_after=False)])
def test_a_model_regularizer_acts_on_both_kernels_of_a_recurrent_layer(make, float64, tmp_path):
    """The model's L2 acts on kernel and recurrent_kernel of every recurrent layer, bare or in Bidirectional
    (a bare LSTM was left out while Bidirectional(LSTM) was regularized), never on the bias; the reported
    loss is the one whose gradient training takes, and the choice survives a save."""
    from neuro.regularizers import L2

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 1))
    inp, rnn, dense = Input((5, 3)), make(), Dense(1)
    model = Model(inp, dense(rnn(inp)), loss="mse", optimizer="sgd", regularizer=L2(0.1), seed=0)
    with_reg = model.evaluate(x, y)["loss"]
    kernels = [v for k, v in rnn.params.items() if k.endswith("kernel")]
    assert len(kernels) == (4 if isinstance(rnn, Bidirectional) else 2)
    expected = sum(L2(0.1).penalty(w) for w in [*kernels, dense.params["kernel"]])
    model.regularizer = None
    assert with_reg - model.evaluate(x, y)["loss"] == pytest.approx(float(expected), rel=1e-12)
    model.regularizer = L2(0.1)
    report = neuro.check_gradients(model, x, y)
    assert report.max_error < 1e-6, report
    model.save(tmp_path / "m.h5")
    assert Model.load(tmp_path / "m.h5").evaluate(x, y)["loss"] == with_reg


def test_a_recurrent_layers_own_regularizers_replace_the_models_and_save():
    """kernel_regularizer, recurrent_regularizer and bias_regularizer (Keras's names) act on their arrays in
    place of the model's, in a Bidirectional too, and travel in the layer's config."""
    from neuro.regularizers import L1, L2

    layer = LSTM(3, kernel_regularizer=L1(0.5), recurrent_regularizer="l2", bias_regularizer=L2(0.25))
    assert set(layer.regularizers) == {"kernel", "recurrent_kernel", "bias"}
    cfg = layer.get_config()
    assert cfg["kernel_regularizer"] == {"class": "L1", "config": {"lam": 0.5}}
    assert cfg["recurrent_regularizer"]["class"] == "L2" and cfg["bias_regularizer"]["config"] == {"lam": 0.25}
    again = LSTM.from_config(cfg)
    assert {k: type(r).__name__ for k, r in again.regularizers.items()} == {
        "kernel": "L1", "recurrent_kernel": "L2", "bias": "L2"}
    bi = Bidirectional(GRU(2, recurrent_regularizer=L1(0.1)))
    assert set(bi.regularizers) == {"forward_recurrent_kernel", "backward_recurrent_kernel"}
    rng = np.random.default_rng(1)
    with neuro.backend.dtype_scope("float64"):
        inp = Input((4, 2))
        lstm = LSTM(3, kernel_regularizer=L1(0.5), bias_regularizer=L2(0.25))
        model = Model(inp, Dense(1)(lstm(inp)), loss="mse", optimizer="sgd", regularizer=L2(0.1), seed=0)
        x, y = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 1))
        with_reg = model.evaluate(x, y)["loss"]
        p = lstm.params
        own = L1(0.5).penalty(p["kernel"]) + L2(0.1).penalty(p["recurrent_kernel"]) + L2(0.25).penalty(p["bias"])
        dense_kernel = next(v for layer in model.layers if isinstance(layer, Dense) for v in [layer.params["kernel"]])
        model.regularizer = None
        lstm.kernel_regularizer = lstm.bias_regularizer = None
        bare = model.evaluate(x, y)["loss"]
        assert with_reg - bare == pytest.approx(float(own + L2(0.1).penalty(dense_kernel)), rel=1e-12)


def test_binary_accuracy_of_a_masked_sequence_output_counts_the_valid_steps():
    """A multi-label tagger (sigmoid outputs per step, binary cross-entropy) over padded sequences: its default
    metric binary_accuracy counts every label of the valid steps only (fit and evaluate raised a weight
    length error)."""
    w = Input((5,), dtype="int64")
    h = GRU(4, return_sequences=True)(Embedding(10, 4, mask_zero=True)(w))
    m = Model(w, Dense(3, activation="sigmoid")(h), loss="binary_crossentropy", optimizer="sgd", seed=0)
    x = np.array([[4, 7, 2, 0, 0], [5, 5, 9, 1, 3], [1, 0, 0, 0, 0], [3, 2, 2, 6, 1]])
    y = np.random.default_rng(0).integers(0, 2, (4, 5, 3)).astype(float)
    valid = x != 0
    right = (m.predict(x) >= 0.5) == (y >= 0.5)
    expected = right[valid].sum() / (3 * valid.sum())
    assert m.evaluate(x, y)["binary_accuracy"] == pytest.approx(expected, rel=1e-12)
    assert 0 < expected < 1
    m.fit(x, y, epochs=1, verbose=0)


def test_bidirectional_refuses_a_backward_layer_of_another_kind_or_size():
    """Its outputs and states are merged with the forward layer's: LSTM(3) with a backward LSTM(5) declared a
    (None, 6) output and computed (N, 8); a backward GRU broke the states' split."""
    with pytest.raises(ValueError, match=r"backward_layer must be a layer of the kind and size of layer \(its "
                                         r"outputs and states are merged with layer's\), got LSTM\(3\) and LSTM\(5\)"):
        Bidirectional(LSTM(3), backward_layer=LSTM(5, go_backwards=True))
    with pytest.raises(ValueError, match=r"got LSTM\(3\) and GRU\(3\)"):
        Bidirectional(LSTM(3, return_state=True), backward_layer=GRU(3, go_backwards=True, return_state=True))
    bi = Bidirectional(LSTM(3), backward_layer=LSTM(3, go_backwards=True, dropout=0.5))
    assert bi.backward_layer.dropout == 0.5


def test_an_embedding_reads_boolean_ids_as_0_and_1():
    """check_ids lets booleans through as ids; the lookup used them as a row mask ((2, 3) ids gave an output of
    shape (4,)) and the backward scattered into the wrong rows."""
    e = Embedding(2, 3)
    e.build((3,), np.random.default_rng(0))
    ids = np.array([[True, False, True], [False, False, True]])
    y, ctx = e.forward(ids, training=True)
    np.testing.assert_array_equal(y, e.params["embeddings"][ids.astype(np.int64)])
    g = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    e.clear_grads()
    e.backward(g, ctx)
    expected = np.stack([g[~ids].sum(axis=0), g[ids].sum(axis=0)])
    np.testing.assert_allclose(e.grads["embeddings"], expected, rtol=1e-6)


def test_token_id_inputs_are_declared_where_the_model_is_built_and_kept_by_its_file(tmp_path):
    """A float tensor into an Embedding is refused when the model is built (every predict failed, telling the
    user to pass the int64 ids they had passed); a Network made from a shape that starts with an Embedding
    reads token ids (Keras's Sequential habit); a saved Network keeps its input's integer type and name (it
    was loaded with a float input, which its Embedding could not read)."""
    inp = Input((3,))
    with pytest.raises(ValueError, match=r"Embedding 'embedding' reads integer token ids, but its input is a "
                                         r"float tensor \(a float Input, or another layer's output\); give it "
                                         r"an integer input: neuro.Input\(shape, dtype='int64'\)"):
        Embedding(5, 2)(inp)
    ids = Input((3,), dtype="int64")
    with pytest.raises(ValueError, match=r"its input is a float tensor \(a float Input, or another layer's"):
        Embedding(5, 2)(Dense(3)(ids))
    with pytest.raises(ValueError, match=r"cannot add Embedding \(layer 0\) after output shape \(3,\): "
                                         r"Embedding 'embedding_1' reads integer token ids"):
        neuro.Network([Input((3,))]).add(Embedding(5, 2, name="embedding_1"))
    net = neuro.Network((3,), loss="mse", optimizer="sgd", seed=0)
    net.add(Embedding(5, 2)).add(GRU(2)).add(Dense(1))
    assert net.graph.inputs[0].dtype == "int64"
    ids = np.array([[1, 2, 3], [4, 0, 1]])
    net.fit(ids, np.zeros((2, 1)), epochs=1, verbose=0)
    with pytest.raises(TypeError, match=r"x must hold integer token ids for an input of dtype int64, got dtype "
                                        r"float64"):
        net.predict(ids.astype(float))
    small = neuro.Network([Input((3,), dtype="int32", name="ids"), Embedding(5, 2), neuro.Flatten(), Dense(1)],
                    loss="mse", optimizer="sgd", seed=0)
    small.save(tmp_path / "ids.h5")
    loaded = neuro.Network.load(tmp_path / "ids.h5")
    assert (loaded.graph.inputs[0].dtype, loaded.graph.inputs[0].name) == ("int32", "ids")
    np.testing.assert_array_equal(loaded.predict(ids), small.predict(ids))


@pytest.mark.parametrize("make", [
    lambda: LSTM(5, return_sequences=True, dropout=0.2, recurrent_dropout=0.3),
    lambda: LSTM(5, go_backwards=True, return_state=True),
    lambda: GRU(4, return_sequences=True, recurrent_dropout=0.25),
    lambda: GRU(4, reset_after=False, go_backwards=True),
    lambda: SimpleRNN(3, activation="relu", return_sequences=True, dropout=0.1),
], ids=["lstm-dropout", "lstm-states", "gru", "gru-before", "simple-relu"])
@pytest.mark.parametrize("masked", [False, True])
def test_a_large_batch_runs_its_time_loop_in_blocks_of_rows_as_it_runs_whole(make, masked, float64, monkeypatch):
    """At two threads a batch of at least 2·MIN_BLOCK_ROWS rows runs each block of rows through every step on
    its own thread (one hand-over a pass): outputs, states, dL/dx, dL/d(initial states) and the weight
    gradients equal those of the whole batch on one thread, with masks, dropout and initial states."""
    from neuro import backend
    from neuro.layers import recurrent as rec

    n, steps, features = 2 * rec.MIN_BLOCK_ROWS + 3, 4, 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, steps, features))
    mask = None
    if masked:
        lengths = rng.integers(0, steps + 1, n)
        mask = np.arange(steps)[None, :] < lengths[:, None]
    blocks = []
    real = backend.parallel_blocks
    monkeypatch.setattr(backend, "parallel_blocks", lambda fn, count: blocks.append(real(fn, count)) or blocks[-1])
    probe = make()
    init = [rng.standard_normal((n, probe.units)) for _ in range(probe.n_states)]
    results, before = [], backend.get_num_threads()
    for threads in (1, 2):
        backend.set_num_threads(threads)
        try:
            layer = make()
            n_states = layer.n_states
            inputs = [x, *init] if layer.return_state else x
            layer.build([(steps, features)] + [(layer.units,)] * n_states if layer.return_state
                        else (steps, features), np.random.default_rng(1))
            with backend.split_products():  # as in a fit
                y, ctx = layer.forward(inputs, training=True, rng=backend.DeviceRNG(np, np.random.default_rng(2)),
                                       mask=mask)
                outs = list(y) if isinstance(y, tuple) else [y]
                g = [np.random.default_rng(3 + k).standard_normal(o.shape) for k, o in enumerate(outs)]
                layer.clear_grads()
                dx = layer.backward(tuple(g) if isinstance(y, tuple) else g[0], ctx)
        finally:
            backend.set_num_threads(before)
        results.append([*outs, *(dx if isinstance(dx, tuple) else [dx]), *layer.grads.values()])
    assert blocks and blocks[-1] is True  # the two-thread pass ran in blocks
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)


def test_sequences_joined_along_time_join_their_masks(float64):
    """Concatenate(axis=1) of masked sequences once ANDed the masks step by step: a (N, 3) mask for a (N, 6)
    output, which broke pooling, LSTMs and sequence losses after it. Joined along time, the masks are joined
    (an unmasked input counts as valid), so the model equals one Embedding over the joined ids."""
    from neuro import LSTM, Concatenate, Embedding, GlobalAveragePooling1D, Input, Model

    emb = Embedding(7, 3, mask_zero=True)
    a, b = Input((3,), dtype="int64"), Input((2,), dtype="int64")
    joined = Concatenate(axis=1)([emb(a), emb(b)])
    lstm, pool = LSTM(4), GlobalAveragePooling1D()
    two = Model([a, b], [lstm(joined), pool(joined)], seed=0)
    c = Input((5,), dtype="int64")
    one = Model(c, [lstm(emb(c)), pool(emb(c))])
    ia, ib = np.array([[1, 2, 0], [0, 0, 0], [3, 0, 4]]), np.array([[0, 5], [6, 0], [1, 2]])
    for got, want in zip(two.predict([ia, ib]), one.predict(np.concatenate([ia, ib], axis=1)), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    d = Input((2, 3))  # an input without a mask: its steps are all valid
    mixed = Model([a, d], pool(Concatenate(axis=1)([emb(a), d])))
    xd = np.random.default_rng(0).standard_normal((3, 2, 3))
    vectors = np.asarray(emb.params["embeddings"])[ia]
    want = (np.sum(vectors * (ia != 0)[..., None], axis=1) + xd.sum(axis=1)) / ((ia != 0).sum(1) + 2)[:, None]
    np.testing.assert_allclose(mixed.predict([ia, xd]), want, rtol=1e-12)
    model = Model([a, b], Dense(1)(lstm(joined)), loss="mse", optimizer="sgd", seed=0)
    assert neuro.check_gradients(model, [ia, ib], np.ones((3, 1))).max_error < 1e-6


@pytest.mark.parametrize("value", [0, (0,), 2.5, (2, 3), True, "2"])
@pytest.mark.parametrize("arg", ["pool_size", "strides"])
def test_one_dimensional_pool_sizes_are_one_positive_integer(arg, value):
    """The message once offered 'a pair of positive integers', which 1-D pools refuse."""
    from neuro import AvgPool1D, MaxPool1D

    for cls in (MaxPool1D, AvgPool1D):
        with pytest.raises(ValueError, match=rf"^{arg} must be a positive integer, got {re.escape(repr(value))}$"):
            cls(**{"pool_size": 2, arg: value})
    assert MaxPool1D((3,), strides=(2,)).get_config()["strides"] == 2


def test_predict_class_of_a_sigmoid_per_step_thresholds_each_step():
    """The argmax of one column named class 0 at every step."""
    net = neuro.Network((5,), "binary_crossentropy", "adam", seed=0)
    net.add(Embedding(9, 4)).add(SimpleRNN(6, return_sequences=True)).add(Dense(1, activation="sigmoid"))
    net.class_names = ["neg", "pos"]
    ids = np.random.default_rng(0).integers(1, 9, (3, 5))
    names, prob = net.predict_class(ids)
    p = net.predict(ids)[..., 0]
    np.testing.assert_array_equal(names, np.where(p >= 0.5, "pos", "neg"))
    np.testing.assert_allclose(prob, np.where(p >= 0.5, p, 1 - p))
