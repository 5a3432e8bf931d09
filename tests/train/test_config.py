import pytest

from amal.errors import AmalError
from amal.train.config import apply_override, load_config


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_defaults_and_partial_file(tmp_path):
    cfg = load_config(_write(tmp_path, "method: kd\ntrain: {epochs: 3}\namal: {every: 2}\n"))
    assert cfg.method == "kd" and cfg.train.epochs == 3 and cfg.train.lr == 0.05 and cfg.amal.every == 2
    assert cfg.teachers[0].model["name"] == "mlp"


def test_overrides_parse_yaml_values_and_list_items(tmp_path):
    cfg = load_config(None, ["amal.lambda_lr=0.5", "train.milestones=[2, 4]", "teachers.0.train.epochs=7",
                             "model={name: mlp, hidden: [8]}"])
    assert cfg.amal.lambda_lr == 0.5 and cfg.train.milestones == [2, 4] and cfg.teachers[0].train.epochs == 7
    assert cfg.model == {"name": "mlp", "hidden": [8]}


def test_float_keys_accept_yaml11_exponents():
    assert load_config(None, ["train.weight_decay=5e-4"]).train.weight_decay == 5e-4


def test_teacher_list_set_whole_keeps_defaults():
    cfg = load_config(None, ["teachers=[{train: {lr: 0.1}}, {noise: 0.2}]"])
    assert cfg.teachers[0].train.lr == 0.1 and cfg.teachers[0].train.epochs == 40
    assert cfg.teachers[1].noise == 0.2 and cfg.teachers[1].model["name"] == "mlp"


def test_teacher_list_items_keep_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, "teachers:\n  - {noise: 0.5}\n  - {path: t.pt}\n"))
    assert len(cfg.teachers) == 2 and cfg.teachers[0].noise == 0.5 and cfg.teachers[1].path == "t.pt"
    assert cfg.teachers[1].train.epochs == 40


@pytest.mark.parametrize(
    "text, match",
    [
        ("amal: {evry: 2}\n", "unknown config key 'amal.evry'"),
        ("bogus: 1\n", "unknown config key 'bogus'"),
        ("train: {epochs: many}\n", "train.epochs"),
        ("method: magic\n", "method must be one of"),
        ("- a\n- b\n", "mapping at the top level"),
        ("train: [1\n", "not valid YAML"),
        ("teachers: [{colour: red}]\n", "teachers.0.colour"),
        ("amal: {engine: bogus}\n", "amal.engine must be one of"),
        ("amal: {update: rmsprop}\n", "amal.update must be one of"),
        ("train: {optimizer: lbfgs}\n", "train.optimizer must be one of"),
        ("train: {nesterov: true, momentum: 0.0}\n", "nesterov"),
        ("teachers: [{train: {lr: -1}}]\n", "teachers.0.train.epochs"),
        ("teachers: [{noise: 1.5}]\n", "teachers.0.noise"),
        ("kd: {temperature: 0}\n", "kd.temperature"),
        ("data: {noise: 1.0}\n", "data.noise"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, match):
    with pytest.raises(AmalError, match=match):
        load_config(_write(tmp_path, text))


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(AmalError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(AmalError, match="key=value"):
        apply_override({}, "amal.every")
    with pytest.raises(AmalError, match="unknown config key 'amal.nope'"):
        load_config(None, ["amal.nope=1"])
