

def test_teacher_logits_cache_calls_the_teacher_once_per_instance():
    import copy

    import torch as _torch
    from torch import nn as _nn

    from amal.core.batch import Batch as _Batch
    from amal.losses import Distillation as _Distillation

    class Counting(_nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = _nn.Linear(3, 4)
            self.calls = []

        def forward(self, x):
            self.calls.append(x.shape[0])
            return self.lin(x)

    x = _torch.randn(10, 3)
    teacher = Counting()
    term = _Distillation(teacher, cache_size=10)
    plain = _Distillation(copy.deepcopy(teacher))
    for rows in ([0, 1, 2], [3, 4], [0, 2], [1, 4, 3]):
        idx = _torch.tensor(rows)
        b = _Batch(x[idx], _torch.zeros(len(rows), dtype=_torch.long), idx)
        term.prepare(b)
        ref = _Batch(x[idx], b.y, idx)
        plain.prepare(ref)
        assert _torch.allclose(b.extras[term.key], ref.extras[plain.key])
    assert teacher.calls == [3, 2]  # later batches hold only instances seen before: served from the cache
