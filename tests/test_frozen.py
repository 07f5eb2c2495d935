"""Frozen layers (issue 17, item 5): ``layer.trainable = False`` and ``model.trainable = False`` as Keras has
them: no update, no optimizer state, no regularization, BatchNorm in inference mode; saved with the model;
changed between fits with the other parameters' optimizer state kept."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import neuro
from neuro import BatchNorm, Concatenate, Dense, Input, Model, Sequential
from neuro.errors import ModelFileError
from neuro.optimizers import SGD, Adam, AdamW
from neuro.regularizers import L2
from neuro.training import step


def _data(n=24, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32)


def _chain(optimizer=None, regularizer=None, seed=0):
    return Sequential(
        [Input((4,)), Dense(6, activation="tanh"), BatchNorm(), Dense(5, activation="relu"), Dense(3)],
        loss="mse",
        optimizer=optimizer or Adam(1e-2),
        regularizer=regularizer,
        seed=seed,
    )


def _arrays(layer):
    return {k: v.copy() for k, v in (*layer.params.items(), *layer.buffers.items())}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- no update, no state, no regularization -------------------------------------------------------------
def test_frozen_layers_keep_their_weights_bitwise_and_get_no_state_or_penalty():
    x, y = _data()
    net = _chain(AdamW(1e-2, weight_decay=0.1), regularizer=L2(0.1))
    dense0, bn, dense1, dense2 = net.layers
    dense0.trainable = False
    bn.trainable = False
    before = {layer.name: _arrays(layer) for layer in net.layers}
    net.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert _same(_arrays(dense0), before[dense0.name])  # decoupled decay and L2 left it alone
    assert _same(_arrays(bn), before[bn.name])  # gamma, beta and the running statistics
    for layer in (dense1, dense2):
        assert not np.array_equal(layer.params["kernel"], before[layer.name]["kernel"])
    assert net.trainable_layers() == [dense1, dense2]
    assert len(net.optimizer.slots) == 4  # kernel and bias of the two trainable layers only
    assert [p for p, _, _ in step.regularized(net)] == [dense1.params["kernel"], dense2.params["kernel"]]
    expected = sum(
        0.05 * float(np.sum(layer.params["kernel"].astype(np.float64) ** 2)) for layer in (dense1, dense2)
    )
    assert float(step.penalty(net)) == pytest.approx(expected, rel=1e-5)


def test_the_trainable_rest_is_gradient_checked(float64):
    x, y = _data()
    net = _chain(regularizer=L2(0.01))
    net.fit(x, y, batch_size=8, epochs=1, verbose=0)  # running statistics away from 0 and 1
    net.layers[1].trainable = False  # the batch norm: inference mode in training
    net.layers[2].trainable = False
    report = neuro.check_gradients(net, x[:6], y[:6], max_entries=None)
    checked = set(report.errors)
    assert report.max_error < 1e-6, report
    assert any("dense_2" in k for k in checked) and any(k.endswith("dense.kernel") for k in checked)
    assert not any("batchnorm" in k or "dense_1" in k for k in checked)  # frozen: constants of the loss
    assert "input input" in checked  # the gradient flows through the frozen layers


# -- BatchNorm --------------------------------------------------------------------------------------------
def test_frozen_batchnorm_is_inference_mode_bn_against_torch(float64, torch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 3, 4))
    g = rng.standard_normal(x.shape)
    bn = BatchNorm(momentum=0.9)
    bn.build((3, 3, 4), rng, np.float64)
    bn.params["gamma"][...] = rng.uniform(0.5, 2, 4)
    bn.params["beta"][...] = rng.standard_normal(4)
    bn.buffers["running_mean"][...] = rng.standard_normal(4)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 3, 4)
    buffers = {k: v.copy() for k, v in bn.buffers.items()}
    bn.trainable = False
    y, ctx = bn.forward(x, training=True)
    assert np.array_equal(y, bn.forward(x, training=False)[0])  # bitwise the inference forward
    bn.clear_grads()
    dx = bn.backward(g, ctx)
    assert _same(bn.buffers, buffers)  # the running statistics are not updated

    ref = torch.nn.BatchNorm2d(4, eps=bn.epsilon, momentum=0.1).double().eval()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(bn.params["gamma"]))
        ref.bias.copy_(torch.from_numpy(bn.params["beta"]))
        ref.running_mean.copy_(torch.from_numpy(buffers["running_mean"]))
        ref.running_var.copy_(torch.from_numpy(buffers["running_var"]))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out = ref(xt)
    out.backward(torch.from_numpy(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, out.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.grads["beta"], ref.bias.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_a_frozen_batchnorm_passes_the_gradient_check_of_its_inference_function(float64):
    rng = np.random.default_rng(0)
    bn = BatchNorm()
    bn.build((2, 2, 3), rng, np.float64)
    bn.buffers["running_mean"][...] = [0.3, -0.1, 0.2]
    bn.buffers["running_var"][...] = [0.5, 2.0, 1.3]
    bn.trainable = False
    report = neuro.check_gradients(bn, rng.standard_normal((6, 2, 2, 3)))
    assert set(report.errors) == {"input", "gamma", "beta"} and report.max_error < 1e-7, report


def test_a_model_with_a_frozen_batchnorm_trains_as_torch_with_bn_eval(float64, torch):
    x, y = (a.astype(np.float64) for a in _data(16))
    net = Sequential([Input((4,)), Dense(5), BatchNorm(), Dense(3)], loss="mse", optimizer=SGD(0.1), seed=1)
    bn = net.layers[1]
    bn.buffers["running_mean"][...] = [0.1, -0.2, 0.3, 0.0, 0.5]
    bn.buffers["running_var"][...] = [1.5, 0.5, 2.0, 1.0, 0.7]
    bn.trainable = False
    lin0, norm, lin1 = (
        torch.nn.Linear(4, 5).double(),
        torch.nn.BatchNorm1d(5, eps=bn.epsilon),
        torch.nn.Linear(5, 3),
    )
    norm, lin1 = norm.double().eval(), lin1.double()
    with torch.no_grad():
        for lin, layer in ((lin0, net.layers[0]), (lin1, net.layers[2])):
            lin.weight.copy_(torch.from_numpy(layer.params["kernel"].T))
            lin.bias.copy_(torch.from_numpy(layer.params["bias"]))
        norm.running_mean.copy_(torch.from_numpy(bn.buffers["running_mean"]))
        norm.running_var.copy_(torch.from_numpy(bn.buffers["running_var"]))
    opt = torch.optim.SGD([*lin0.parameters(), *lin1.parameters()], lr=0.1)  # the norm's weights not given
    for s in range(0, 16, 4):
        opt.zero_grad()
        pred = lin1(norm(lin0(torch.from_numpy(x[s : s + 4]))))
        (((pred - torch.from_numpy(y[s : s + 4])) ** 2).sum(1).mean()).backward()
        opt.step()
    net.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for lin, layer in ((lin0, net.layers[0]), (lin1, net.layers[2])):
        np.testing.assert_allclose(
            layer.params["kernel"], lin.weight.detach().numpy().T, rtol=1e-10, atol=1e-12
        )
    assert np.array_equal(bn.params["gamma"], np.ones(5)) and np.array_equal(bn.params["beta"], np.zeros(5))
    np.testing.assert_array_equal(bn.buffers["running_var"], norm.running_var.numpy())


# -- summary, files -----------------------------------------------------------------------------------------
def test_summary_counts_trainable_and_non_trainable_params():
    net = _chain()  # dense 4*6+6 = 30, batchnorm 12 params + 12 buffers, dense_1 35, dense_2 18
    text = net.summary(print_fn=None)
    assert "Trainable params: 95" in text and "Non-trainable params: 12" in text
    net.layers[0].trainable = False
    net.layers[1].trainable = False
    text = net.summary(print_fn=None)
    assert "Total params: 107" in text
    assert "Trainable params: 53" in text and "Non-trainable params: 54" in text


def test_flags_are_saved_and_loaded_and_old_files_load_as_trainable(tmp_path):
    net = _chain()
    path = tmp_path / "plain.h5"
    net.save(path)
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["config"])
    assert "frozen" not in config and "trainable" not in config  # a file without frozen layers is unchanged
    assert all(layer.trainable for layer in Sequential.load(path).layers)

    net.layers[1].trainable = False
    net.layers[3].trainable = False
    net.save(path)
    loaded = Sequential.load(path)
    assert [layer.trainable for layer in loaded.layers] == [True, False, True, False]
    assert loaded.trainable
    net.trainable = False
    net.save(path)
    loaded = Sequential.load(path)
    assert not loaded.trainable and not any(layer.trainable for layer in loaded.layers)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frozen": [7]}, "config.frozen"),
        ({"frozen": [1, 1]}, "config.frozen"),
        ({"frozen": "1"}, "config.frozen"),
        ({"trainable": 0}, "config.trainable"),
    ],
)
def test_a_bad_frozen_list_in_a_file_is_refused(tmp_path, change, message):
    path = tmp_path / "net.h5"
    _chain().save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        config.update(change)
        f.attrs["config"] = json.dumps(config)
    with pytest.raises(ModelFileError, match=message):
        Sequential.load(path)


def test_a_model_saved_with_frozen_layers_resumes_bitwise(tmp_path):
    x, y = _data()
    whole = _chain()
    whole.layers[0].trainable = False
    whole.fit(x, y, batch_size=8, epochs=2, verbose=0)
    whole.layers[2].trainable = False  # the set changes between fits
    whole.fit(x, y, batch_size=8, epochs=1, verbose=0)

    first = _chain()
    first.layers[0].trainable = False
    first.fit(x, y, batch_size=8, epochs=1, verbose=0)
    first.save(tmp_path / "half.h5")
    resumed = Sequential.load(tmp_path / "half.h5")
    resumed.fit(x, y, batch_size=8, epochs=1, verbose=0)
    resumed.layers[2].trainable = False
    resumed.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(
        whole.optimizer.get_state()["slots"], resumed.optimizer.get_state()["slots"], strict=True
    ):
        assert _same(a, b)


def test_a_model_saved_after_freezing_or_unfreezing_holds_the_state_its_next_step_starts_from(tmp_path):
    """The file holds the optimizer's state re-keyed to the layers trainable when it is saved (no step in
    between): freezing a layer and saving loads (its state was once refused as too many slots), and after
    swapping which layer trains, the loaded model resumes bitwise as the uninterrupted one (it once gave the
    newly unfrozen layer the other layer's moments). Saving changes nothing in the model."""
    x, y = _data(k=4)
    model = _branches()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.get_layer("a_out").trainable = False
    before = [{k: v.copy() for k, v in s.items()} for s in model.optimizer.slots]
    model.save(tmp_path / "frozen.h5")
    assert [_same(a, b) for a, b in zip(before, model.optimizer.slots, strict=True)] == [True] * 8
    loaded = Model.load(tmp_path / "frozen.h5")
    assert len(loaded.optimizer.slots) == 6
    model.get_layer("a_out").trainable = True  # unfrozen again before any step: its state was kept
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)

    uninterrupted, saved = _branches(), _branches()
    for m in (uninterrupted, saved):
        m.get_layer("a_hidden").trainable = False
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        m.get_layer("a_hidden").trainable = True
        m.get_layer("b_hidden").trainable = False
    saved.save(tmp_path / "swapped.h5")
    resumed = Model.load(tmp_path / "swapped.h5")
    assert all(not v.any() for v in resumed.optimizer.slots[0].values())  # a_hidden starts afresh
    for m in (uninterrupted, resumed):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(uninterrupted.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)


# -- changing trainable between fits ------------------------------------------------------------------
def _branches(seed=0):
    """Two branches whose outputs are concatenated: under MSE, branch a's gradients do not depend on b."""
    inp = Input((4,))
    a = Dense(2, name="a_out")(Dense(5, activation="tanh", name="a_hidden")(inp))
    b = Dense(2, name="b_out")(Dense(3, activation="relu", name="b_hidden")(inp))
    return Model(inp, Concatenate()([a, b]), loss="mse", optimizer=Adam(1e-2), seed=seed)


def test_freezing_between_fits_keeps_the_other_layers_optimizer_state():
    x, y = _data(k=4)
    frozen, never = _branches(), _branches()
    for model in (frozen, never):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for name in ("b_hidden", "b_out"):
        frozen.get_layer(name).trainable = False
    b_before = {n: _arrays(frozen.get_layer(n)) for n in ("b_hidden", "b_out")}
    for model in (frozen, never):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for n in ("b_hidden", "b_out"):
        assert _same(_arrays(frozen.get_layer(n)), b_before[n])
    # branch a trained exactly as in the run that never froze b: weights and Adam's moments, bitwise
    for n in ("a_hidden", "a_out"):
        assert _same(_arrays(frozen.get_layer(n)), _arrays(never.get_layer(n)))
    a_params = [p for n in ("a_hidden", "a_out") for p in frozen.get_layer(n).params.values()]
    assert len(frozen.optimizer.slots) == len(a_params)
    for mine, theirs in zip(frozen.optimizer.slots, never.optimizer.slots[: len(a_params)], strict=True):
        assert _same(mine, theirs)
    assert frozen.optimizer.iterations == never.optimizer.iterations


def test_unfreezing_starts_from_a_fresh_state_and_keeps_the_others():
    x, y = _data(k=4)
    model = _branches()
    model.get_layer("a_out").trainable = False
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    kept = [{k: v.copy() for k, v in s.items()} for s in model.optimizer.slots]
    assert len(kept) == 6  # a_hidden, b_hidden, b_out: kernel and bias each
    model.get_layer("a_out").trainable = True
    model.sync_optimizer_state()
    slots = model.optimizer.slots
    assert len(slots) == 8  # every parameter again, in layer order: a_out's after a_hidden's
    assert [_same(a, b) for a, b in zip(kept, slots[:2] + slots[4:], strict=True)] == [True] * 6
    assert all(not v.any() for s in slots[2:4] for v in s.values())  # a_out starts from zeros
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(v.any() for s in model.optimizer.slots[2:4] for v in s.values())


def test_a_model_with_nothing_trainable_fits_without_changing():
    x, y = _data()
    net = _chain()
    net.trainable = False
    before = net.get_weights()
    history = net.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights(), strict=True))
    assert len(history["loss"]) == 2 and history["loss"][0] == history["loss"][1]
    net.trainable = True
    assert all(layer.trainable for layer in net.layers)


# -- nested models -------------------------------------------------------------------------------------
def _base():
    inp = Input((4,))
    return Model(
        inp, BatchNorm(name="base_bn")(Dense(6, activation="relu", name="base_dense")(inp)), name="base"
    )


def test_a_frozen_nested_model_is_left_alone_and_saved(tmp_path):
    x, y = _data()
    base = _base()
    inp = Input((4,))
    outer = Model(inp, Dense(3, name="head")(base(inp)), loss="mse", optimizer=Adam(1e-2), seed=0)
    outer.fit(x, y, batch_size=8, epochs=1, verbose=0)  # the base's statistics move
    base.trainable = False  # Keras's fine-tuning habit: base_model.trainable = False
    assert not outer.get_layer("base").trainable
    frozen = {n: _arrays(base.get_layer(n)) for n in ("base_dense", "base_bn")}
    head = _arrays(outer.get_layer("head"))
    outer.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for n in ("base_dense", "base_bn"):
        assert _same(_arrays(base.get_layer(n)), frozen[n])
    assert not _same(_arrays(outer.get_layer("head")), head)
    assert len(outer.optimizer.slots) == 2

    outer.save(tmp_path / "outer.h5")
    loaded = Model.load(tmp_path / "outer.h5")
    inner = loaded.get_layer("base")
    assert not inner.trainable
    assert [layer.trainable for layer in loaded.leaf_layers()] == [False, False, True]
    assert len(loaded.optimizer.slots) == 2

    outer.get_layer("base").trainable = True  # through the layer in the outer model
    assert all(layer.trainable for layer in outer.leaf_layers())


def test_trainable_takes_only_booleans():
    net = _chain()
    for target in (net, net.layers[0]):
        for bad in (0, 1, "no", None):
            with pytest.raises(TypeError, match="trainable must be True or False"):
                target.trainable = bad
    net.layers[0].trainable = np.bool_(False)
    assert net.layers[0].trainable is False


def test_freezing_on_the_strict_device_trains_as_on_numpy():
    """Frozen layers and a change between fits move no array to the host unasked: bitwise NumPy's run."""
    x, y = _data()
    runs = []
    for device in ("numpy", "strict"):
        net = _chain().to(device)
        net.layers[1].trainable = False  # the batch norm, in inference mode
        net.fit(x, y, batch_size=8, epochs=1, verbose=0)
        net.layers[0].trainable = False
        net.fit(x, y, batch_size=8, epochs=1, verbose=0)
        runs.append((net.get_weights(), net.optimizer.get_state()["slots"]))
    (w_a, s_a), (w_b, s_b) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w_a, w_b, strict=True))
    assert all(_same(a, b) for a, b in zip(s_a, s_b, strict=True)) and len(s_a) == 4


def test_model_api_review_fixes():
    """summary's rows count every array (BatchNorm's moving statistics were in the total only); set_weights
    checks every array before it writes one (a bad dtype late in the list left the first ones overwritten);
    freezing an outer model freezes the nested model's own flag; an optimizer another model let go, state and
    all, is refused by a new model (it would have started from that model's moments and step count)."""
    import neuro

    net = neuro.Network((4,), "mse", "sgd", seed=0)
    net.add(neuro.Dense(3)).add(neuro.BatchNorm())
    rows = [line for line in net.summary(print_fn=None).splitlines() if "(BatchNorm)" in line]
    assert rows[0].split()[-1] == "12"
    before = net.get_weights()
    bad = [w.copy() for w in before]
    bad[0][...] = 7.0
    bad[3] = np.array(["x"] * bad[3].size).reshape(bad[3].shape)
    with pytest.raises(TypeError, match=r"weights\[3\] \(batchnorm.beta\) must hold real numbers, got dtype <U1"):
        net.set_weights(bad)
    for a, b in zip(net.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)

    inp = neuro.Input((4,))
    enc = neuro.Model(inp, neuro.Dense(2)(inp), loss="mse", optimizer="sgd", seed=0)
    outer_in = neuro.Input((4,))
    outer = neuro.Model(outer_in, neuro.Dense(1)(enc(outer_in)), loss="mse", optimizer="sgd", seed=0)
    outer.trainable = False
    assert enc.trainable is False and enc.as_layer().trainable is False

    opt = neuro.optimizers.Adam(1e-3)
    a = neuro.Network((4,), "mse", opt, seed=0)
    a.add(neuro.Dense(1))
    a.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0)
    a.compile("mse", neuro.optimizers.Adam(1e-3))  # a lets the trained optimizer go
    b = neuro.Network((4,), "mse", seed=1)
    b.add(neuro.Dense(1))
    with pytest.raises(ValueError, match=r"optimizer holds the state of another model's training \(step 1\)"):
        b.compile("mse", opt)
