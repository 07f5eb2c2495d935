"""Models that are graphs, against PyTorch: a residual block with a projection shortcut and BatchNorm, an
Inception-like concatenating block, a model with two inputs, one with two outputs and loss weights, and a
siamese model whose shared layer is called twice. In float64 each must equal PyTorch to 1e-10 (outputs,
loss, the gradient of every parameter and of every input), and its gradients must equal central finite
differences of the loss it reports.
"""

from __future__ import annotations

import numpy as np
import pytest

import neuro
from neuro import (
    Add,
    Average,
    BatchNorm,
    Concatenate,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    Maximum,
    MaxPool2D,
    Minimum,
    Model,
    Multiply,
    ReLU,
    Subtract,
)
from neuro.functional.conv import same_padding

RTOL = 1e-10


def _close(actual, expected, what, rtol=RTOL, floor=1e-12):
    """Relative error below ``rtol``; ``floor`` is the smallest scale it is relative to (a gradient that is
    exactly 0 in theory, such as a bias before BatchNorm, is rounding noise of about 1e-17 in both)."""
    actual = np.asarray(neuro.to_numpy(actual))
    scale = max(float(np.max(np.abs(expected))), floor)
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err < rtol, f"{what}: relative error {err:.2e}"


# -- torch helpers: channels-last tensors in and out -----------------------------------------------------------
def t_conv(torch, layer, x, p):
    """neuro's Conv2D (stride, 'same' padding with the extra cell at the bottom/right) in torch."""
    f = torch.nn.functional
    t = x.permute(0, 3, 1, 2)
    if layer.padding == "same":
        top, bottom = same_padding(t.shape[2], layer.kernel_size[0], layer.strides[0])
        left, right = same_padding(t.shape[3], layer.kernel_size[1], layer.strides[1])
        t = f.pad(t, (left, right, top, bottom))
    z = f.conv2d(t, p[layer.name]["kernel"].permute(3, 2, 0, 1), p[layer.name]["bias"], stride=layer.strides)
    z = z.permute(0, 2, 3, 1)
    return _t_act(torch, layer.activation.key, z)


def t_dense(torch, layer, x, p):
    return _t_act(torch, layer.activation.key, x @ p[layer.name]["kernel"] + p[layer.name]["bias"])


def _t_act(torch, key, z):
    return {
        "linear": lambda: z,
        "relu": lambda: torch.relu(z),
        "tanh": lambda: torch.tanh(z),
        "sigmoid": lambda: torch.sigmoid(z),
        "softmax": lambda: torch.softmax(z, dim=-1),
    }[key]()


def t_bn(torch, layer, x, p):
    c = x.shape[-1]
    y = torch.nn.functional.batch_norm(
        x.reshape(-1, c), None, None, p[layer.name]["gamma"], p[layer.name]["beta"], training=True,
        eps=layer.epsilon,
    )
    return y.reshape(x.shape)


def t_maxpool_same(torch, layer, x):
    f = torch.nn.functional
    t = x.permute(0, 3, 1, 2)
    top, bottom = same_padding(t.shape[2], layer.pool_size[0], layer.strides[0])
    left, right = same_padding(t.shape[3], layer.pool_size[1], layer.strides[1])
    t = f.pad(t, (left, right, top, bottom), value=-float("inf"))
    return f.max_pool2d(t, layer.pool_size, layer.strides).permute(0, 2, 3, 1)


def torch_params(torch, model):
    """Every parameter of the model as a float64 torch leaf tensor, by layer name."""
    return {
        layer.name: {k: torch.tensor(neuro.to_numpy(v), requires_grad=True) for k, v in layer.params.items()}
        for layer in model.leaf_layers()
    }


def compare(torch, model, xs, ys, torch_forward, torch_loss):
    """Run the neuro model (training mode) and the torch reference; compare everything."""
    loss, dxs = model.compute_gradients(xs, ys, input_gradients=True)
    outs, _ = model.graph.forward([np.asarray(a) for a in xs], True, model._device_rng)
    p = torch_params(torch, model)
    txs = [torch.tensor(a, requires_grad=True) for a in xs]
    touts = torch_forward(p, *txs)
    tloss = torch_loss(touts, ys)
    tloss.backward()
    for k, (o, t) in enumerate(zip(outs, touts, strict=True)):
        _close(o, t.detach().numpy(), f"output {k}")
    assert abs(loss - tloss.item()) <= RTOL * abs(tloss.item()), (loss, tloss.item())
    for layer in model.leaf_layers():
        for k in layer.params:
            expected = p[layer.name][k].grad.numpy()
            if np.max(np.abs(expected)) < 1e-13:  # exactly 0 in theory (a bias before a BatchNorm): noise
                assert np.max(np.abs(neuro.to_numpy(layer.grads[k]))) < 1e-13, f"{layer.name}.{k}"
                continue
            _close(layer.grads[k], expected, f"{layer.name}.{k}", floor=1e-6)
    for i, (d, t) in enumerate(zip(dxs, txs, strict=True)):
        _close(d, t.grad.numpy(), f"input {i}")
    report = neuro.check_gradients(model, xs, ys, max_entries=40)
    # a bias just before a BatchNorm has a gradient of exactly 0 (the normalisation removes any shift): its
    # central difference is rounding noise, which the relative error would magnify
    vanishing = {
        f"{i}.{layer.name}.{k}"
        for i, layer in enumerate(model.leaf_layers())
        for k, g in layer.grads.items()
        if float(np.max(np.abs(neuro.to_numpy(g)))) < 1e-12
    }
    errors = {k: v for k, v in report.errors.items() if k not in vanishing}
    assert max(errors.values()) < 1e-6, report


def _ce(torch, z_or_p, y, probs=True):
    p = z_or_p if probs else torch.softmax(z_or_p, -1)
    return -torch.log(p[torch.arange(len(y)), torch.tensor(y)]).mean()


# -- the five models -----------------------------------------------------------------------------------------
def test_residual_block_with_projection_shortcut_and_batchnorm(float64, torch):
    x = Input((8, 8, 3))
    c1, b1 = Conv2D(6, 3, strides=2, padding="same"), BatchNorm(momentum=0.9)
    c2, b2 = Conv2D(6, 3, padding="same"), BatchNorm(momentum=0.9)
    proj, bp = Conv2D(6, 1, strides=2), BatchNorm(momentum=0.9)
    relu1, relu2 = ReLU(), ReLU()
    h = relu1(b1(c1(x)))
    h = b2(c2(h))
    s = bp(proj(x))
    out = Dense(4, activation="softmax")(GlobalAveragePooling2D()(relu2(Add()([h, s]))))
    model = Model(x, out, loss="crossentropy", optimizer="sgd", seed=0)
    for layer in (b1, b2, bp):  # non-trivial scale and shift
        layer.params["gamma"][...] = np.linspace(0.5, 1.5, 6)
        layer.params["beta"][...] = np.linspace(-0.3, 0.3, 6)
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((6, 8, 8, 3)), rng.integers(0, 4, 6)
    dense = model.layers[-1]

    def forward(p, tx):
        h = torch.relu(t_bn(torch, b1, t_conv(torch, c1, tx, p), p))
        h = t_bn(torch, b2, t_conv(torch, c2, h, p), p)
        s = t_bn(torch, bp, t_conv(torch, proj, tx, p), p)
        g = torch.relu(h + s).mean(dim=(1, 2))
        return [t_dense(torch, dense, g, p)]

    compare(torch, model, [xs], ys, forward, lambda outs, y: _ce(torch, outs[0], y))


def test_inception_like_concatenating_block(float64, torch):
    x = Input((7, 7, 4))
    b1 = Conv2D(3, 1, activation="relu")
    # tanh on one branch: a ReLU kink within the finite-difference step would spoil the check there
    b2a, b2b = Conv2D(2, 1, activation="relu"), Conv2D(4, 3, padding="same", activation="tanh")
    pool, b3 = MaxPool2D(3, strides=1, padding="same"), Conv2D(2, 1, activation="relu")
    cat = Concatenate()([b1(x), b2b(b2a(x)), b3(pool(x))])
    dense = Dense(3, activation="softmax")
    out = dense(Flatten()(cat))
    model = Model(x, out, loss="softmax_crossentropy", optimizer="adam", seed=1)
    rng = np.random.default_rng(1)
    xs, ys = rng.standard_normal((4, 7, 7, 4)), rng.integers(0, 3, 4)

    def forward(p, tx):
        c = torch.cat(
            [
                t_conv(torch, b1, tx, p),
                t_conv(torch, b2b, t_conv(torch, b2a, tx, p), p),
                t_conv(torch, b3, t_maxpool_same(torch, pool, tx), p),
            ],
            dim=-1,
        )
        return [t_dense(torch, dense, c.reshape(len(c), -1), p)]

    compare(torch, model, [xs], ys, forward, lambda outs, y: _ce(torch, outs[0], y))


def test_two_inputs(float64, torch):
    image, numbers = Input((6, 6, 1), name="image"), Input((3,), name="numbers")
    conv, dn, head = Conv2D(2, 3, activation="tanh"), Dense(4, activation="relu"), Dense(3, activation="softmax")
    joined = Concatenate()([Flatten()(conv(image)), dn(numbers)])
    model = Model([image, numbers], head(joined), loss="crossentropy", optimizer="rmsprop", seed=2)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((5, 6, 6, 1)), rng.standard_normal((5, 3)) + 0.05]
    ys = rng.integers(0, 3, 5)

    def forward(p, ti, tn):
        a = t_conv(torch, conv, ti, p).reshape(5, -1)
        return [t_dense(torch, head, torch.cat([a, t_dense(torch, dn, tn, p)], dim=-1), p)]

    compare(torch, model, xs, ys, forward, lambda outs, y: _ce(torch, outs[0], y))
    # the dict form names the inputs
    np.testing.assert_array_equal(
        neuro.to_numpy(model.predict({"numbers": xs[1], "image": xs[0]})), neuro.to_numpy(model.predict(xs))
    )


def test_two_outputs_with_loss_weights(float64, torch):
    x = Input((5,))
    trunk = Dense(6, activation="tanh")
    cls, reg = Dense(3, activation="softmax", name="cls"), Dense(2, name="reg")
    h = trunk(x)
    model = Model(x, [cls(h), reg(h)], loss=["crossentropy", "mse"], optimizer="sgd", loss_weights=[1.0, 0.3],
                  seed=3, regularizer=neuro.L2(0.01))
    rng = np.random.default_rng(3)
    xs, y1, y2 = rng.standard_normal((7, 5)), rng.integers(0, 3, 7), rng.standard_normal((7, 2))

    def forward(p, tx):
        h = t_dense(torch, trunk, tx, p)
        return [t_dense(torch, cls, h, p), t_dense(torch, reg, h, p)]

    def loss(outs, ys):
        mse = ((outs[1] - torch.tensor(ys[1])) ** 2).sum(dim=1).mean()
        return _ce(torch, outs[0], ys[0]) + 0.3 * mse

    # the L2 penalty λ/2·Σw² is added in torch by hand, on the same kernels
    loss_value, dxs = model.compute_gradients([xs], [y1, y2], input_gradients=True)
    p = torch_params(torch, model)
    tx = torch.tensor(xs, requires_grad=True)
    outs = forward(p, tx)
    pen = 0.005 * sum((p[n]["kernel"] ** 2).sum() for n in (trunk.name, "cls", "reg"))
    tloss = loss(outs, [y1, y2]) + pen
    tloss.backward()
    assert abs(loss_value - tloss.item()) < RTOL * tloss.item()
    for layer in model.leaf_layers():
        for k in layer.params:
            _close(layer.grads[k], p[layer.name][k].grad.numpy(), f"{layer.name}.{k}")
    _close(dxs[0], tx.grad.numpy(), "input")
    report = neuro.check_gradients(model, xs, [y1, y2], max_entries=40)
    assert report.max_error < 1e-6, report
    logs = model.evaluate(xs, {"cls": y1, "reg": y2})
    assert set(logs) == {"loss", "cls_loss", "reg_loss", "cls_accuracy"}
    assert logs["loss"] == pytest.approx(logs["cls_loss"] + 0.3 * logs["reg_loss"] + pen.item(), rel=1e-12)


def test_siamese_model_with_a_shared_layer(float64, torch):
    a, b = Input((4,), name="left"), Input((4,), name="right")
    embed = Dense(5, activation="tanh")
    d = Subtract()([embed(a), embed(b)])  # the same weights, called twice
    sq = Multiply()([d, d])
    out = Dense(1, activation="sigmoid")(sq)
    model = Model([a, b], out, loss="binary_crossentropy", optimizer="adam", seed=4)
    assert len(embed._nodes) == 2 and model.layers.count(embed) == 1
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((6, 4)), rng.standard_normal((6, 4))]
    ys = rng.integers(0, 2, 6).astype(float)
    final = model.layers[-1]

    def forward(p, ta, tb):
        e = t_dense(torch, embed, ta, p) - t_dense(torch, embed, tb, p)
        return [t_dense(torch, final, e * e, p)]

    def loss(outs, y):
        return torch.nn.functional.binary_cross_entropy(outs[0][:, 0], torch.tensor(y))

    compare(torch, model, xs, ys, forward, loss)


def test_a_shared_layer_sums_its_gradients_over_calls(float64):
    x = Input((3,))
    shared = Dense(3, activation="tanh")
    y = shared(shared(x))  # the same layer twice in a row
    model = Model(x, Dense(1)(y), loss="mse", optimizer="sgd", seed=0)
    rng = np.random.default_rng(0)
    report = neuro.check_gradients(model, rng.standard_normal((5, 3)), rng.standard_normal((5, 1)))
    assert report.max_error < 1e-7, report


# -- building: what a user gets wrong ------------------------------------------------------------------------
def test_a_layer_that_cannot_take_a_shape_fails_at_call_time_naming_both():
    x = Input((6,))
    with pytest.raises(ValueError, match=r"layer 'conv2d' \(Conv2D\) cannot take input of shape \(None, 6\): "
                                         r"Conv2D expects input_shape \(height, width, channels\)"):
        Conv2D(2, 3)(x)


def test_merging_tensors_of_different_shapes_names_them():
    a, b = Input((3,)), Input((4,))
    with pytest.raises(ValueError, match=r"layer 'add' \(Add\) cannot take input of shape \[\(None, 3\), "
                                         r"\(None, 4\)\]: Add needs inputs of one shape"):
        Add()([a, b])
    with pytest.raises(ValueError, match=r"Concatenate\(axis=-1\) needs inputs whose shapes agree except along"):
        Concatenate()([Input((2, 3)), Input((3, 3))])
    with pytest.raises(ValueError, match=r"Subtract takes 2 inputs, got 3"):
        Subtract()([a, a, a])
    with pytest.raises(ValueError, match=r"Add takes a list of inputs, got one input"):
        Add()(a)


def test_graph_errors_name_what_is_wrong():
    a, b = Input((3,), name="a"), Input((3,), name="b")
    out = Dense(2)(a)
    with pytest.raises(ValueError, match=r"inputs \['b'\] are not used by any output"):
        Model([a, b], out)
    other = Input((3,), name="other")
    with pytest.raises(ValueError, match=r"outputs\[0\] \(dense.*\) depends on Input 'other' \(None, 3\), which is "
                                         r"not among the model's inputs \['a'\]"):
        Model(a, Dense(2)(other))
    with pytest.raises(TypeError, match=r"outputs\[0\] must be a symbolic tensor .* got ndarray"):
        Model(a, [np.zeros(3)])
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a tensor made by neuro.Input"):
        Model(out, out)
    with pytest.raises(ValueError, match=r"two layers are named 'head' \(Dense and Dense\)"):
        Model(a, [Dense(1, name="head")(a), Dense(1, name="head")(a)])
    with pytest.raises(ValueError, match=r"inputs holds the same Input tensor twice"):
        Model([a, a], Add()([Dense(1)(a), Dense(1)(a)]))


def test_a_shared_layer_must_fit_both_calls():
    d = Dense(4)
    d(Input((3,)))
    with pytest.raises(ValueError, match=r"layer 'dense' \(Dense\) was first called on input of shape \(None, 3\) "
                                         r"and now on \(None, 5\)"):
        d(Input((5,)))


def test_data_given_as_the_wrong_structure_is_refused():
    a, b = Input((2,), name="a"), Input((3,), name="b")
    m = Model([a, b], [Dense(1, name="u")(a), Dense(1, name="v")(b)], loss="mse", optimizer="sgd", seed=0)
    xa, xb, y = np.zeros((4, 2)), np.zeros((4, 3)), np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"x is a dict with keys \['a', 'c'\]; expected exactly the names \['a', 'b'\]"):
        m.fit({"a": xa, "c": xb}, [y, y], verbose=0)
    with pytest.raises(ValueError, match=r"x must be a list of 2 arrays \(one per \['a', 'b'\]\), got 3"):
        m.predict([xa, xb, xb])
    with pytest.raises(ValueError, match=r"x must be a list of 2 arrays or a dict keyed by \['a', 'b'\], got one array"):
        m.predict(xa)
    with pytest.raises(ValueError, match=r"y is a dict with keys \['u', 'w'\]; expected exactly the names \['u', 'v'\]"):
        m.fit([xa, xb], {"u": y, "w": y}, verbose=0)
    with pytest.raises(ValueError, match=r"x\['b'\] must have shape \(N, 3\), got \(4, 2\)"):
        m.predict([xa, xa])
    with pytest.raises(ValueError, match=r"every input must hold the same number of samples; 'a' has 4, 'b' has 2"):
        m.predict([xa, xb[:2]])
    with pytest.raises(ValueError, match=r"loss must hold one entry per output \(2: \['u', 'v'\]\), got 3"):
        m.compile(["mse"] * 3, "sgd")
    with pytest.raises(ValueError, match=r"loss has keys \['w'\] that are no output name; the outputs are \['u', 'v'\]"):
        m.compile({"u": "mse", "w": "mse"}, "sgd")


def test_a_model_without_loss_predicts_and_asks_for_compile_to_train():
    x = Input((3,))
    m = Model(x, Dense(2)(x), seed=0)
    assert m.predict(np.ones((2, 3))).shape == (2, 2)
    with pytest.raises(RuntimeError, match=r"fit needs a loss and an optimizer: give them to the constructor or "
                                           r"call model.compile\(loss=..., optimizer=...\) first"):
        m.fit(np.ones((2, 3)), np.ones((2, 2)), verbose=0)
    m.compile("mse", "sgd")
    m.fit(np.ones((2, 3)), np.ones((2, 2)), verbose=0)


# -- structure: dicts, nesting, summary ----------------------------------------------------------------------
def test_dict_outputs_name_the_outputs_and_the_predictions():
    x = Input((3,), name="features")
    h = Dense(4, activation="relu")(x)
    m = Model({"features": x}, {"kind": Dense(2, activation="softmax")(h), "size": Dense(1)(h)},
              loss={"kind": "crossentropy", "size": "mse"}, optimizer="adam", seed=0)
    assert m.output_names == ["kind", "size"]
    rng = np.random.default_rng(0)
    x_, k, v = rng.standard_normal((20, 3)), rng.integers(0, 2, 20), rng.standard_normal((20, 1))
    hist = m.fit({"features": x_}, {"kind": k, "size": v}, epochs=2, verbose=0, validation_data=({"features": x_}, {"kind": k, "size": v}))
    assert list(hist.history) == ["loss", "kind_loss", "size_loss", "kind_accuracy", "val_loss", "val_kind_loss",
                                  "val_size_loss", "val_kind_accuracy"]
    pred = m.predict({"features": x_})
    assert set(pred) == {"kind", "size"} and pred["kind"].shape == (20, 2)


def test_a_model_called_as_a_layer_shares_its_weights_and_saves(tmp_path):
    inner_in = Input((4,))
    encoder = Model(inner_in, Dense(3, activation="tanh", name="code")(Dense(5, activation="relu")(inner_in)),
                    seed=0, name="encoder")
    a, b = Input((4,), name="a"), Input((4,), name="b")
    joined = Concatenate()([encoder(a), encoder(b)])  # the encoder's weights, used twice
    outer = Model([a, b], Dense(1, activation="sigmoid")(joined), loss="bce", optimizer="adam", seed=1)
    assert [type(layer).__name__ for layer in outer.layers] == ["Functional", "Concatenate", "Dense"]
    assert len(outer.params) == 6  # the encoder's four arrays once, the head's two
    rng = np.random.default_rng(0)
    xs, y = [rng.standard_normal((16, 4)), rng.standard_normal((16, 4))], rng.integers(0, 2, 16).astype(float)
    before = encoder.get_weights()
    outer.fit(xs, y, epochs=2, batch_size=4, verbose=0)
    assert any(not np.array_equal(u, v) for u, v in zip(before, encoder.get_weights(), strict=True))
    with neuro.backend.dtype_scope("float64"):
        i2 = Input((4,))
        enc = Model(i2, Dense(3, activation="tanh")(i2), name="enc")
        a2, b2 = Input((4,)), Input((4,))
        m64 = Model([a2, b2], Dense(1)(Add()([enc(a2), enc(b2)])), loss="mse", optimizer="sgd", seed=0)
    report = neuro.check_gradients(m64, xs, y[:, None])
    assert report.max_error < 1e-7, report
    outer.save(tmp_path / "nested.h5")
    loaded = Model.load(tmp_path / "nested.h5")
    np.testing.assert_array_equal(neuro.to_numpy(loaded.predict(xs)), neuro.to_numpy(outer.predict(xs)))
    outer.fit(xs, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    loaded.fit(xs, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    for u, v in zip(outer.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)


def test_summary_shows_what_each_layer_is_connected_to():
    a, b = Input((3,), name="a"), Input((3,), name="b")
    s = Add(name="sum")([Dense(2, name="left")(a), Dense(2, name="right")(b)])
    text = Model([a, b], s).summary(print_fn=None)
    assert "Connected to" in text
    row = next(line for line in text.splitlines() if line.startswith("sum (Add)"))
    assert row.split()[-2:] == ["left,", "right"]
    chain = neuro.Network((3,), "mse", "sgd").add(Dense(2)).summary(print_fn=None)
    assert "Connected to" not in chain


def test_graph_models_save_load_predict_bitwise_and_resume_bitwise(tmp_path):
    x = Input((6, 6, 2))
    h = Conv2D(3, 3, padding="same", activation="relu")(x)
    h = BatchNorm()(h)
    skip = Conv2D(3, 1)(x)
    out = Dense(2, activation="softmax")(GlobalAveragePooling2D()(Add()([h, skip])))
    m = Model(x, out, loss="crossentropy", optimizer="adam", seed=0)
    rng = np.random.default_rng(0)
    xs, y = rng.standard_normal((24, 6, 6, 2)).astype(np.float32), rng.integers(0, 2, 24)
    m.fit(xs, y, epochs=1, batch_size=8, verbose=0)
    m.save(tmp_path / "m.h5")
    loaded = Model.load(tmp_path / "m.h5")
    assert type(loaded) is Model and loaded.summary(print_fn=None) == m.summary(print_fn=None)
    np.testing.assert_array_equal(neuro.to_numpy(loaded.predict(xs)), neuro.to_numpy(m.predict(xs)))
    m.fit(xs, y, epochs=2, batch_size=8, verbose=0)
    loaded.fit(xs, y, epochs=2, batch_size=8, verbose=0)
    for u, v in zip(m.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(neuro.ModelFileError, match=r"holds a Model \(a graph\), which Network.load cannot read"):
        neuro.Network.load(tmp_path / "m.h5")


def test_a_chain_saved_by_a_network_loads_as_a_network(tmp_path):
    net = neuro.Network((4,), "mse", "sgd", seed=0).add(Dense(3)).add(Dense(1))
    net.save(tmp_path / "n.h5")
    assert type(Model.load(tmp_path / "n.h5")) is neuro.Network
    assert [layer.name for layer in neuro.Network.load(tmp_path / "n.h5").layers] == ["dense", "dense_1"]


def test_the_strict_device_reads_the_host_a_constant_number_of_times_per_step():
    def build(branches, depth):
        x = Input((5,))
        outs = []
        for _ in range(branches):
            h = x
            for _ in range(depth):
                h = Dense(4, activation="tanh")(h)
            outs.append(h)
        h = outs[0] if branches == 1 else Add()(outs)
        return Model(x, Dense(2, activation="softmax")(h), loss="crossentropy", optimizer="adam", seed=0,
                     device="strict")

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 5)), rng.integers(0, 2, 16)
    reads = []
    for branches, depth in ((1, 1), (3, 4), (5, 6)):
        m = build(branches, depth)
        xs, ys = m.to_device(m.prepare_inputs(x)), m.to_device(m.prepare_targets(y, 16), "y")
        m.train_step(xs, ys)  # first step: the optimizer's state is made
        before = neuro.backend.host_reads()
        m.train_step(xs, ys)
        reads.append(neuro.backend.host_reads() - before)
    assert reads == [1, 1, 1], reads


def test_onnx_export_of_a_graph_equals_predict(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    a, b = Input((5, 5, 2), name="image"), Input((3,), name="extra")
    h = Conv2D(3, 3, padding="same", activation="relu")(a)
    h = Concatenate()([h, Conv2D(2, 1)(a)])
    h = Average()([GlobalAveragePooling2D()(h), GlobalAveragePooling2D()(h)])
    j = Concatenate()([h, Dense(2, activation="tanh")(b)])
    out1 = Dense(3, name="cls")(j)  # a linear output: softmax_crossentropy's softmax is part of predict
    out2 = Dense(1, name="reg")(Maximum()([Dense(1)(b), Minimum()([Dense(1)(b), Dense(1)(b)])]))
    m = Model([a, b], [out1, out2], loss=["softmax_crossentropy", "mse"], optimizer="sgd", seed=0)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, 5, 5, 2)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)]
    m.export_onnx(tmp_path / "g.onnx")
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image", "extra"]
    assert [o.name for o in sess.get_outputs()] == ["cls", "reg"]
    got = sess.run(None, {"image": xs[0], "extra": xs[1]})
    want = [neuro.to_numpy(p) for p in m.predict(xs)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(want[0].sum(axis=1), 1, rtol=1e-6)  # probabilities


def test_a_data_set_feeds_several_inputs_and_outputs():
    from neuro.data import DataSet
    from neuro.data.dataset import ArraySplit

    a, b = Input((3,), name="a"), Input((2,), name="b")
    h = Concatenate()([Dense(4, activation="tanh")(a), b])
    m = Model([a, b], [Dense(2, activation="softmax", name="k")(h), Dense(1, name="v")(h)],
              loss=["crossentropy", "mse"], optimizer="adam", seed=0)
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    k, v = rng.integers(0, 2, 40), rng.standard_normal((40, 1))
    data = DataSet(ArraySplit({"a": xa[:30], "b": xb[:30]}, {"k": k[:30], "v": v[:30]}),
                   valid=ArraySplit({"a": xa[30:], "b": xb[30:]}, {"k": k[30:], "v": v[30:]}))
    hist = m.fit(data, epochs=2, batch_size=10, verbose=0, shuffle=False)
    assert "val_k_accuracy" in hist.history
    a2, b2 = Input((3,), name="a"), Input((2,), name="b")
    h2 = Concatenate()([Dense(4, activation="tanh")(a2), b2])
    m2 = Model([a2, b2], [Dense(2, activation="softmax", name="k")(h2), Dense(1, name="v")(h2)],
               loss=["crossentropy", "mse"], optimizer="adam", seed=0)
    m2.fit([xa[:30].astype(np.float32), xb[:30].astype(np.float32)], [k[:30], v[:30]], epochs=2, batch_size=10,
           verbose=0, shuffle=False)
    for u, w in zip(m.get_weights(), m2.get_weights(), strict=True):
        np.testing.assert_array_equal(u, w)


# -- a max pooling applies the backward of the ReLU before it ------------------------------------------------
POOLS = {
    "2x2": (lambda: MaxPool2D(2), (8, 8, 2)),
    "overlapping": (lambda: MaxPool2D(3, strides=2), (7, 7, 2)),
    "same_odd": (lambda: MaxPool2D(2, padding="same"), (7, 5, 2)),
    "same_stride1": (lambda: MaxPool2D(3, strides=1, padding="same"), (5, 5, 2)),
}


def _relu_pool_model(pool, shape, first=None, seed=3):
    x = Input(shape)
    conv = first if first is not None else Conv2D(4, 3, padding="same", activation="relu")
    dense = Dense(3, activation="softmax")
    out = dense(Flatten()(pool(conv(x))))
    return Model(x, out, loss="softmax_crossentropy", optimizer="adam", seed=seed), conv, dense


def _fused(model):
    return [(s.preactivated, s.relu_input) for s in model.graph.steps]


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_relu_then_max_pooling_equals_pytorch(kind, float64, torch):
    make_pool, shape = POOLS[kind]
    pool = make_pool()
    model, conv, dense = _relu_pool_model(pool, shape)
    assert _fused(model)[:2] == [(True, False), (False, True)]  # the pooling applies the ReLU's backward
    rng = np.random.default_rng(4)
    xs, ys = rng.standard_normal((5, *shape)), rng.integers(0, 3, 5)
    f = torch.nn.functional

    def forward(p, tx):
        h = t_conv(torch, conv, tx, p)
        if pool.padding == "same":
            h = t_maxpool_same(torch, pool, h)
        else:
            h = f.max_pool2d(h.permute(0, 3, 1, 2), pool.pool_size, pool.strides).permute(0, 2, 3, 1)
        return [t_dense(torch, dense, h.reshape(len(h), -1), p)]

    compare(torch, model, [xs], ys, forward, lambda outs, y: _ce(torch, outs[0], y))


def _use_kernels(kernels, monkeypatch):
    """Run this test on ``kernels`` (skipped without numba for "numba"); the choice is put back after it."""
    from neuro import backend

    if kernels == "numba":
        pytest.importorskip("numba")
    monkeypatch.setattr(backend, "_kernel_request", backend._kernel_request)
    monkeypatch.setattr(backend, "_kernels_on", None)
    backend.set_kernels(kernels)


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_relu_pooling_trains_bitwise_as_the_unfused_layers(kernels, threads, monkeypatch):
    """The fusion only skips a pass: the weights after two steps are bitwise those of the unfused graph, for
    a convolution in pieces (its ReLU applied piece by piece), one without pieces, and a Dense on images."""
    from neuro import backend, graph
    from neuro.functional import conv as conv_functional

    monkeypatch.setattr(conv_functional, "TRAIN_CHUNK", 2048)  # 8×8×2 images: pieces of a few samples
    monkeypatch.setattr(conv_functional, "TRAIN_PIECE", 2048)
    _use_kernels(kernels, monkeypatch)
    before = backend.get_num_threads()
    backend.set_num_threads(threads)
    rng = np.random.default_rng(5)
    xs, ys = rng.standard_normal((12, 8, 8, 2)).astype(np.float32), rng.integers(0, 3, 12)
    firsts = {
        "pieces": lambda: Conv2D(6, 3, padding="same", activation="relu"),
        "whole": lambda: Conv2D(6, 1, activation="relu"),  # 1×1: one window matrix, no pieces
        "dense": lambda: Dense(5, activation="relu"),  # on the channels of each pixel
    }
    try:
        for name, first in firsts.items():
            for make_pool, _ in POOLS.values():
                weights = []
                for fuse in (True, False):
                    monkeypatch.setattr(graph, "FUSE_RELU_POOL", fuse)
                    model, _, _ = _relu_pool_model(make_pool(), (8, 8, 2), first())
                    assert _fused(model)[0][0] is fuse, name
                    model.fit(xs, ys, batch_size=6, epochs=1, shuffle=False, verbose=0, metrics=())
                    weights.append(model.get_weights())
                for a, b in zip(*weights, strict=True):
                    np.testing.assert_array_equal(a, b, err_msg=name)
    finally:
        backend.set_num_threads(before)


def test_the_pooling_applies_a_relus_backward_only_where_nothing_else_reads_it():
    class Shifted(Conv2D):  # overrides forward: its output is not relu(z)
        def forward(self, x, training=False, rng=None, mask=None):
            y, ctx = super().forward(x, training, rng, mask)
            return y - 1.0, ctx

    x = Input((6, 6, 2))
    cases = {}
    conv = Conv2D(3, 3, activation="relu")
    h = conv(x)
    cases["read twice"] = Model(x, Concatenate()([Flatten()(MaxPool2D(2)(h)), Flatten()(h)]))
    conv = Conv2D(3, 3, activation="relu")
    h = conv(x)
    cases["an output too"] = Model(x, [MaxPool2D(2)(h), h])
    cases["leaky"] = Model(x, MaxPool2D(2)(Conv2D(3, 3, activation="leaky_relu")(x)))
    cases["overridden forward"] = Model(x, MaxPool2D(2)(Shifted(3, 3, activation="relu")(x)))
    cases["standalone relu"] = Model(x, MaxPool2D(2)(ReLU()(Conv2D(3, 3)(x))))

    class OldPool(MaxPool2D):  # a subclass written before the pooling took relu_input
        def forward(self, x, training=False, rng=None):
            return super().forward(x, training, rng)

    cases["pooling subclass"] = Model(x, OldPool(2)(Conv2D(3, 3, activation="relu")(x)))
    for name, model in cases.items():
        assert not any(p or r for p, r in _fused(model)), name
    model = cases["pooling subclass"]
    model.compile(loss="mse", optimizer="sgd")
    model.fit(np.ones((2, 6, 6, 2)), np.ones((2, 2, 2, 3)), verbose=0)  # runs as it did
    fused = Model(x, MaxPool2D(2)(Conv2D(3, 3, activation="relu")(x)))
    assert [r for _, r in _fused(fused)] == [False, True]


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
def test_fused_relu_pooling_equals_the_unfused_layers_with_nan_and_inf(kernels, monkeypatch):
    """Non-finite values give the same gradients, NaN for NaN, with and without the fusion: a NaN beside a
    positive maximum (sample 0), and infinite incoming gradients at windows whose maximum is 0 (sample 1:
    times the ReLU's 0, NaN)."""
    from neuro import graph

    _use_kernels(kernels, monkeypatch)
    rng = np.random.default_rng(6)
    xs = np.abs(rng.standard_normal((3, 8, 8, 2))).astype(np.float32)
    xs[0, 1, 1, :] = np.nan  # the last cell of its 2×2 window
    xs[1, 2:6, 2:6, :] = -50.0  # windows whose maximum after the ReLU is 0
    for make_pool, _ in POOLS.values():
        found = []
        for fuse in (True, False):
            monkeypatch.setattr(graph, "FUSE_RELU_POOL", fuse)
            x = Input((8, 8, 2))
            conv = Conv2D(3, 1, activation="relu", kernel_initializer="ones")  # x > 0: z > 0
            g = Model(x, Dense(2)(Flatten()(make_pool()(conv(x)))), seed=3).graph
            g.set_input_gradients(True)
            with np.errstate(all="ignore"):
                outs, tape = g.forward([xs], True)
                up = np.ones_like(outs[0])
                up[1] = np.inf
                dx = g.backward(tape, [up])[0]
            found.append([dx[0], dx[1], dx[2]])
        for a, b in zip(*found, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_layer_that_no_longer_ends_in_a_relu_is_not_fused(float64):
    pool = MaxPool2D(2)
    model, conv, _ = _relu_pool_model(pool, (6, 6, 2))
    conv.activation = neuro.layers.activation.get("tanh")  # after the graph was made
    rng = np.random.default_rng(7)
    report = neuro.check_gradients(model, rng.standard_normal((3, 6, 6, 2)), rng.integers(0, 3, 3))
    assert report.max_error < 1e-6, report


def test_pooling_offsets_stay_bytes_while_they_fit():
    from neuro.functional import pooling

    x = np.random.default_rng(8).standard_normal((1, 16, 16, 1)).astype(np.float32)
    assert pooling.max_pool2d(x, (16, 16), (16, 16), training=True)[1][0].dtype == np.uint8
    assert pooling.max_pool2d(x, (16, 16), (16, 16), training=True, relu_input=True)[1][0].dtype == np.int32
    assert pooling.max_pool2d(x, (8, 16), (8, 16), training=True, relu_input=True)[1][0].dtype == np.uint8


@pytest.mark.parametrize("kernels", ["numpy", "numba"])
@pytest.mark.parametrize("nan", [False, True])
def test_relu_input_offsets_mark_the_windows_whose_element_at_the_offset_is_not_positive(kernels, nan, monkeypatch):
    """With ``relu_input`` a window's offset grows by ph·pw exactly where the element at its offset is not
    above 0: ties, ±0, ±inf and (in one case) NaNs, against the offsets recorded without it."""
    from neuro.functional import pooling

    _use_kernels(kernels, monkeypatch)
    rng = np.random.default_rng(9)
    values = np.array([-np.inf, -2.0, -0.0, 0.0, 0.0, 1.0, 1.0, 3.0, np.inf], np.float32)
    x = rng.choice(values, size=(4, 6, 8, 3))
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    for pool in ((2, 2), (3, 3), (2, 3)):
        plain = pooling.max_pool2d(x, pool, pool, training=True)[1][0].astype(np.int64)
        fused = pooling.max_pool2d(x, pool, pool, training=True, relu_input=True)[1][0].astype(np.int64)
        ph, pw = pool
        n, ho, wo, c = plain.shape
        b, i, j, ch = np.indices(plain.shape)
        at = x[b, i * ph + plain // pw, j * pw + plain % pw, ch]
        np.testing.assert_array_equal(fused, plain + ph * pw * ~(at > 0), err_msg=str(pool))


def test_predicts_chain_path_equals_the_executor_and_only_chains_take_it():
    """predict runs a chain (each node reading only the node before it) as its layers' forwards alone; the
    result is the executor's, bit for bit, and a graph that reads a tensor twice, has two inputs or two
    outputs keeps the slots."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    inp = Input((6,))
    chain = Model(inp, Dense(3, activation="softmax")(Dense(4, activation="tanh")(inp)), seed=0)
    h = Dense(6, activation="relu")(inp)
    residual = Model(inp, Dense(2)(Add()([h, inp])), seed=0)
    a, b = Input((6,)), Input((6,))
    two_in = Model([a, b], Dense(2)(Concatenate()([a, b])), seed=0)
    two_out = Model(inp, [Dense(2)(inp), Dense(3)(inp)], seed=0)
    for model, xs, is_chain in ((chain, [x], True), (residual, [x], False), (two_in, [x, 2 * x], False),
                                (two_out, [x], False)):
        got = model.graph.infer(xs)
        assert (model.graph._plain_plan[1] is not None) is is_chain
        want = model.graph.forward(xs, False, None, None)[0]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_a_layer_called_on_arrays_checks_them_as_a_symbolic_call_does():
    """Direct calls on arrays once broadcast or returned empty results: a BatchNorm of 3 features gave (2, 3)
    for a (2, 1) input, Add broadcast (2, 3) + (2, 1) and batches of 2 and 1, a 3×3 pool of a 2×2 image gave
    (1, 0, 0, 1), and a Conv2D failed with ZeroDivisionError or a raw matmul error."""
    from neuro import Add, AvgPool2D, BatchNorm, Conv1D, Conv2D, MaxPool2D, Multiply

    rng = np.random.default_rng(0)
    bn = BatchNorm()
    bn(rng.standard_normal((4, 3)))
    dense = Dense(3)
    dense(np.ones((2, 4)))
    conv = Conv2D(2, 3)
    conv(np.ones((1, 8, 8, 1)))
    refused = [
        (lambda: bn(rng.standard_normal((2, 1))), r"'batchnorm' \(BatchNorm\) was first called on input of shape \(None, 3\) and now on \(None, 1\)"),
        (lambda: dense(np.ones((2, 5))), r"was first called on input of shape \(None, 4\) and now on \(None, 5\)"),
        (lambda: conv(np.ones((1, 8, 8, 2))), r"\(None, 8, 8, 1\) and now on \(None, 8, 8, 2\)"),
        (lambda: conv(np.ones((1, 2, 2, 1))), r"cannot take input of shape \(None, 2, 2, 1\): kernel_size \(3, 3\) is larger"),
        (lambda: Add()([np.ones((2, 3)), np.ones((2, 1))]), r"Add needs inputs of one shape"),
        (lambda: Multiply()([np.ones((2, 3)), np.ones((2, 1))]), r"Multiply needs inputs of one shape"),
        (lambda: Add()([np.ones((2, 3)), np.ones((1, 3))]), r"arrays of batch sizes \[2, 1\]; they must be equal"),
        (lambda: MaxPool2D(3)(np.ones((1, 2, 2, 1))), r"pool_size \(3, 3\) is larger than the input \(2, 2\)"),
        (lambda: AvgPool2D(3)(np.ones((1, 2, 2, 1))), r"pool_size \(3, 3\) is larger than the input \(2, 2\)"),
        (lambda: Conv1D(2, 3)(np.ones((1, 2, 1))), r"the kernel spans 3 steps"),
    ]  # fmt: skip
    for call, message in refused:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match=r"takes arrays with a batch axis, got float of shape \(\)"):
        dense(3.0)
    assert dense(np.ones((7, 4))).shape == (7, 3)  # another batch size is fine
