"""The AMAL object: configuration and input errors, frozen teachers, state, schedules and engines."""

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from conftest import train_with_amal
from torch import nn
from torch.utils.data import DataLoader

import amal
from amal.core.batch import Batch
from amal.core.engines import Chunk, EngineContext, ValSample, make_engine
from amal.core.term import logit_grads
from amal.core.updates import make_update
from amal.core.weights import LambdaTable
from amal.data import Indexed, TensorData
from amal.errors import AmalError

pytestmark = pytest.mark.usefixtures("single_thread")

N, D, C = 40, 5, 3
BATCH = 8


# --- helpers
def _data(n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randint(0, C, (n,), generator=g)


def _loader(x, y, batch_size=BATCH):
    return DataLoader(Indexed(TensorData(x, y)), batch_size=batch_size, shuffle=False)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C))


def _bn_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, C))


def _meta(model=None, terms=None, n=N, val="default", **options):
    model = _mlp() if model is None else model
    terms = [amal.CrossEntropy()] if terms is None else terms
    val = _data(30, seed=1) if isinstance(val, str) else val
    return amal.AMAL(model, terms, n, val, **options)


def _raw_batch(start=0, size=BATCH, x=None, y=None):
    if x is None:
        x, y = _data()
    idx = torch.arange(start, start + size)
    return x[idx], y[idx], idx


def _buffers(module):
    return {k: v.clone() for k, v in module.named_buffers()}


def _assert_same_buffers(module, before):
    after = dict(module.named_buffers())
    assert after.keys() == before.keys() and after
    for k, v in before.items():
        assert torch.equal(after[k], v), f"buffer {k} changed"


def _train_epoch(meta, opt, loader, epoch):
    train_with_amal(meta, opt, loader, 1, start=epoch)


def _train(meta, opt, loader, epochs):
    for epoch in range(epochs):
        _train_epoch(meta, opt, loader, epoch)


def _custom(name, value):
    return amal.CustomTerm(name, value)


# --- configuration
def test_unknown_option_raises():
    with pytest.raises(AmalError, match=r"unknown AMAL option\(s\) \['lambda_rate'\]"):
        _meta(lambda_rate=3.0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"engine": "exact"}, "unknown engine"),
        ({"schedule": "daily"}, "unknown schedule"),
        ({"update": "rmsprop"}, "unknown lambda update"),
        ({"lambda_lr": -1.0}, "positive"),
        ({"fit": 0}, "fit"),
        ({"inner_steps": 0}, "inner_steps"),
        ({"val_batch": 0}, "val_batch"),
        ({"every": 0}, "every"),
        ({"warmup": -1}, "warmup"),
        ({"lambda_init": {"kd": 0.5}}, "unknown term"),
        ({"head": "nope"}, "no submodule"),
        ({"lambda_min": 1.0, "lambda_max": 0.5}, "min < max"),
    ],
)
def test_bad_configuration_raises(options, match):
    with pytest.raises(AmalError, match=match):
        _meta(**options)


@pytest.mark.parametrize(
    "val",
    [(torch.empty(0, D), torch.empty(0, dtype=torch.long)), TensorData(torch.empty(0, D), torch.empty(0))],
    ids=["tensors", "dataset"],
)
def test_empty_validation_set_raises(val):
    with pytest.raises(AmalError, match="validation set is empty"):
        _meta(val=val)


@pytest.mark.parametrize(
    ("val", "match"),
    [((torch.randn(4, D), torch.zeros(3, dtype=torch.long)), "rows"), ([1, 2, 3], "val must be")],
)
def test_malformed_validation_set_raises(val, match):
    with pytest.raises(AmalError, match=match):
        _meta(val=val)


def test_validation_dataset_is_accepted():
    meta = _meta(val=TensorData(*_data(12, seed=3)))
    assert len(meta.val) == 12


def test_duplicate_term_names_raise():
    with pytest.raises(AmalError, match="unique"):
        _meta(terms=[amal.CrossEntropy(), amal.CrossEntropy()])


def test_no_terms_raise():
    with pytest.raises(AmalError, match="at least one loss term"):
        _meta(terms=[])


def test_last_layer_needs_a_linear_head():
    model = nn.Sequential(nn.Unflatten(1, (1, D)), nn.Conv1d(1, C, D), nn.Flatten())
    with pytest.raises(AmalError, match="no nn.Linear"):
        _meta(model=model)


def test_paper_init_of_lambda():
    kd = amal.Distillation(_mlp(seed=5), name="kd")
    meta = _meta(terms=[amal.CrossEntropy(), kd])
    assert meta.table.columns == ["ce", "kd"]
    assert torch.allclose(meta.table.values, torch.tensor([[0.1, 0.9]]).expand(N, 2))


# --- batches
@pytest.mark.parametrize("form", ["tuple", "mapping", "batch"])
def test_loss_is_lambda_weighted_mean(form):
    x, y, idx = _raw_batch(start=8)
    raw = {"tuple": (x, y, idx), "mapping": {"x": x, "y": y, "idx": idx}, "batch": Batch(x, y, idx)}[form]
    meta = _meta(schedule="fixed", val=None)
    meta.table.set_rows(idx, torch.linspace(0.2, 1.6, BATCH)[:, None])
    loss, logits = meta.loss(raw)
    per = F.cross_entropy(meta.model(x), y, reduction="none")
    assert torch.allclose(logits, meta.model(x))
    assert torch.allclose(loss, (torch.linspace(0.2, 1.6, BATCH) * per).mean())


def test_index_out_of_range_in_step():
    meta = _meta(n=N - 4)
    with pytest.raises(AmalError, match="out of range"):
        meta.loss(_raw_batch(start=N - BATCH), lr=0.1)


def test_index_out_of_range_in_sweep():
    meta = _meta(n=N - 4)
    with pytest.raises(AmalError, match="out of range"):
        meta.sweep(_loader(*_data()), lr=0.1)


def test_negative_index_is_named():
    x, y, idx = _raw_batch()
    idx = idx.clone()
    idx[2] = -1
    with pytest.raises(AmalError, match="index -1 out of range"):
        _meta().loss((x, y, idx), lr=0.1)


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda x, y, i: (x, y[:-1], i), "shapes disagree"),
        (lambda x, y, i: (x, y, i[:-1]), "shapes disagree"),
        (lambda x, y, i: (x, y, i[:, None]), "shapes disagree"),
        (lambda x, y, i: (x[:0], y[:0], i[:0]), "empty batch"),
        (lambda x, y, i: (x, y), "idx"),
        (lambda x, y, i: {"x": x, "y": y}, r"lacks keys \['idx'\]"),
    ],
)
def test_malformed_batch_raises(mangle, match):
    with pytest.raises(AmalError, match=match):
        _meta().loss(mangle(*_raw_batch()), lr=0.1)


def test_label_out_of_range_raises_amal_error():
    x, y, idx = _raw_batch()
    y = y.clone()
    y[0] = C + 2
    with pytest.raises(AmalError, match="label"):
        _meta().loss((x, y, idx), lr=0.1)


def test_online_needs_a_learning_rate():
    with pytest.raises(AmalError, match="learning rate"):
        _meta(schedule="online").loss(_raw_batch())


# --- bad terms
def test_term_with_wrong_shape_in_step():
    meta = _meta(terms=[_custom("col", lambda z, b: F.cross_entropy(z, b.y, reduction="none")[:, None])])
    with pytest.raises(AmalError, match=r"'col' returned shape \(8, 1\)"):
        meta.loss(_raw_batch(), lr=0.1)


def test_term_with_wrong_shape_in_sweep():
    meta = _meta(terms=[_custom("col", lambda z, b: F.cross_entropy(z, b.y, reduction="none")[:, None])])
    with pytest.raises(AmalError, match="'col' must return a per-instance loss of shape"):
        meta.sweep(_loader(*_data()), lr=0.1)


def _nan_term():
    return _custom("bad", lambda z, b: z.sum(1) * float("nan"))


def test_nan_loss_in_step_names_term():
    meta = _meta(terms=[amal.CrossEntropy(), _nan_term()])
    with pytest.raises(AmalError, match=r"NaN/inf in loss term\(s\) \['bad'\]"):
        meta.loss(_raw_batch(), lr=0.1)


def test_nan_input_in_step():
    x, y, idx = _raw_batch()
    x = x.clone()
    x[3, 0] = float("nan")
    with pytest.raises(AmalError, match=r"NaN.*\['ce'\]"):
        _meta(schedule="fixed", val=None).loss((x, y, idx))


@pytest.mark.parametrize("update", ["sgd", "normalized", "adam"])
def test_nan_loss_in_sweep_raises_and_keeps_lambda(update):
    meta = _meta(terms=[amal.CrossEntropy(), _nan_term()], update=update)
    before = meta.table.values.clone()
    with pytest.raises(AmalError, match="NaN"):
        meta.sweep(_loader(*_data()), lr=0.1)
    assert torch.equal(meta.table.values, before)


def test_head_followed_by_something_is_refused():
    class Doubled(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def forward(self, x):
            return self.net(x) * 2

    meta = _meta(model=Doubled())
    with pytest.raises(AmalError, match="after the head"):
        meta.sweep(_loader(*_data()), lr=0.1)


# --- teachers
def _noisy_teacher():
    torch.manual_seed(7)
    return nn.Sequential(nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, C))


def test_teacher_stays_in_eval_mode_without_gradients():
    teacher = _noisy_teacher()
    kd = amal.Distillation(teacher)
    teacher.train()  # the caller flips it back after wrapping (the authors' baseline bug)
    kd.teacher.train()
    stats = _buffers(teacher)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    meta = _meta(model=model, terms=[amal.CrossEntropy(), kd], optimizer=opt, every=1)
    loader = _loader(*_data())
    for epoch in range(2):
        teacher.train()  # a careless loop puts it back in train mode every epoch
        _train_epoch(meta, opt, loader, epoch)
    assert len(meta.history) == 2  # sweeps ran (and called the teacher)
    assert teacher.training is False and kd.teacher.training is False
    assert not any(m.training for m in teacher.modules())
    for p in teacher.parameters():
        assert p.grad is None and p.requires_grad is False
    _assert_same_buffers(teacher, stats)
    # dropout is off: the same inputs give the same targets
    b1, b2 = (Batch(*_raw_batch()) for _ in range(2))
    for b in (b1, b2):
        kd.prepare(b)
    assert torch.equal(b1.extras[kd.key], b2.extras[kd.key])


# --- schedules and state
def _sweep_setup(**options):
    return _meta(update="normalized", val_batch=10, **options), _loader(*_data())


def test_state_dict_roundtrip_restores_lambda_and_generator():
    a, loader = _sweep_setup()
    a.start_epoch(0, loader, lr=0.5)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    a.sweep(loader, lr=0.5)
    expected = a.table.values.clone()

    b, _ = _sweep_setup(model=a.model)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # AMAL state must load without unpickling objects
    b.load_state_dict(state)
    assert torch.equal(b.table.values, state["table"]["values"])
    assert b.epoch == 0 and len(b.history) == 1 and b.history[0].chunks == 2
    b.sweep(loader, lr=0.5)
    assert torch.equal(b.table.values, expected)

    # not vacuous: the same Λ with a fresh generator draws other validation batches
    c, _ = _sweep_setup(model=a.model)
    c.table.load_state_dict(state["table"])
    c.sweep(loader, lr=0.5)
    assert not torch.allclose(c.table.values, expected)


def test_same_seed_same_sweep():
    a, loader = _sweep_setup(seed=4)
    b, _ = _sweep_setup(model=a.model, seed=4)
    a.sweep(loader, lr=0.5)
    b.sweep(loader, lr=0.5)
    assert torch.equal(a.table.values, b.table.values)


@pytest.mark.parametrize("val", [None, "default"], ids=["no-val", "val"])
def test_fixed_schedule_never_changes_lambda(val):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    meta = _meta(model=model, schedule="fixed", val=val, optimizer=opt)
    init = meta.table.values.clone()
    _train(meta, opt, _loader(*_data()), epochs=3)
    assert torch.equal(meta.table.values, init)
    assert meta.history == []
    with pytest.raises(AmalError, match="fixed"):
        meta.sweep(_loader(*_data()), lr=0.1)


def test_epochs_schedule_sweeps_after_warmup_every_n():
    meta, loader = _sweep_setup(warmup=1, every=2)
    swept = [meta.start_epoch(e, loader, lr=0.1) is not None for e in range(6)]
    assert swept == [False, True, False, True, False, True]
    assert [h.epoch for h in meta.history] == [1, 3, 5]


def test_online_updates_only_the_batch_rows():
    meta, _ = _sweep_setup(schedule="online")
    init = meta.table.values.clone()
    x, y, idx = _raw_batch(start=16)
    meta.loss((x, y, idx), lr=0.5)
    changed = (meta.table.values != init).any(dim=1)
    assert changed[idx].all() and changed.sum() == BATCH


# --- CustomTerm == CrossEntropy
def _hand_ce(z, b):
    return -torch.log_softmax(z, dim=1)[torch.arange(z.shape[0]), b.y]


def _lambda_after_chunk(terms, steps=5, lr=0.5):
    """One chunk of three batches through the last_layer engine and the sgd rule, all in float64."""
    torch.manual_seed(11)
    body = nn.Sequential(nn.Linear(D, 7), nn.Tanh()).double()
    head = nn.Linear(7, C).double()
    model = nn.Sequential(body, head)
    x, y = _data(21, seed=2)
    xv, yv = _data(15, seed=3)
    x, xv = x.double(), xv.double()
    spans = ((0, 8), (8, 8), (16, 5))
    batches = [Batch(x[s : s + n], y[s : s + n], torch.arange(s, s + n)) for s, n in spans]
    with torch.no_grad():
        for b in batches:
            for t in terms:
                t.prepare(b)
        chunk = Chunk(
            idx=torch.arange(21),
            inv_b=torch.cat([torch.full((len(b),), 1.0 / len(b), dtype=torch.float64) for b in batches]),
            features=torch.cat([body(b.x) for b in batches]),
            deltas=torch.cat([logit_grads(terms, model(b.x), b) for b in batches]),
        )
        val = ValSample(y=yv, features=body(xv), logits=model(xv))
    table = LambdaTable.paper_init(
        21, [t.name for t in terms], [t.name for t in terms if t.supervised], dtype=torch.float64
    )
    objective = make_engine("last_layer").make_objective(EngineContext(model, head, terms), chunk, val, lr)
    update = make_update("sgd", 2.0)
    lam = table.rows(chunk.idx)
    for _ in range(steps):
        grad, _ = objective(lam)
        lam = table.project(update.step(lam, grad, chunk.idx))
    table.set_rows(chunk.idx, lam)
    return table


def test_custom_term_matches_builtin_cross_entropy_float64():
    teacher = nn.Linear(D, C).double()
    kd = amal.Distillation(teacher, temperature=2.0)
    builtin = _lambda_after_chunk([amal.CrossEntropy(), kd])
    custom = _lambda_after_chunk([amal.CustomTerm("ce", _hand_ce, supervised=True), kd])
    assert builtin.values.dtype == torch.float64
    assert torch.allclose(custom.values, builtin.values, atol=1e-10, rtol=0)
    moved = (builtin.values - builtin.init_row).abs()
    assert moved.max() > 1e-2  # the update is not vacuous
    lo, hi = builtin.bounds
    assert ((builtin.values > lo) & (builtin.values < hi)).float().mean() > 0.9  # mostly off the clamps


def test_custom_term_matches_builtin_through_amal_sweep():
    def sweep(term):
        meta, loader = _sweep_setup(terms=[term])
        meta.sweep(loader, lr=0.5)
        return meta.table.values

    builtin = sweep(amal.CrossEntropy())
    custom = sweep(amal.CustomTerm("ce", _hand_ce, supervised=True))
    assert torch.allclose(custom, builtin, atol=1e-5)
    assert not torch.equal(builtin, torch.full_like(builtin, 0.1))


# --- BatchNorm
def _warm_bn_model():
    model = _bn_model()
    model.train()
    with torch.no_grad():
        model(_data(32, seed=9)[0] * 3 + 1)  # non-trivial running statistics
    return model


@pytest.mark.parametrize("engine", ["lookahead", "last_layer"])
def test_sweep_leaves_batchnorm_statistics_alone(engine):
    model = _warm_bn_model()
    stats = _buffers(model)
    meta, loader = _sweep_setup(model=model, engine=engine)
    init = meta.table.values.clone()
    rec = meta.sweep(loader, lr=0.1)
    assert model.training  # restored after the sweep
    _assert_same_buffers(model, stats)
    assert not torch.equal(meta.table.values, init)
    assert rec.chunks == 2 and rec.val_loss_first > 0


@pytest.mark.parametrize("engine", ["lookahead", "last_layer"])
def test_online_step_moves_batchnorm_like_a_plain_forward(engine):
    model = _warm_bn_model()
    reference = copy.deepcopy(model)
    meta, _ = _sweep_setup(model=model, engine=engine, schedule="online")
    x, y, idx = _raw_batch()
    init = meta.table.values.clone()
    meta.loss((x, y, idx), lr=0.1)
    with torch.no_grad():
        reference(x)  # exactly one training-mode forward pass
    assert model.training
    _assert_same_buffers(model, _buffers(reference))
    assert not torch.equal(meta.table.values[idx], init[idx])
