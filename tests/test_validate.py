"""Every value of a run config is checked against what it builds, before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_cfg, run_module
from ganlab.errors import ConfigError
from ganlab.validate import validate
from test_config import options


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={e}"] for e in options("experiment")]
    + [[f"model={m}"] for m in options("model")]
    + [[f"trainer={t}"] for t in options("trainer")]
    + [["model.conditional=true", "model.ema.decay=0.999", "max_iters=10", "model.lr_d=4e-4"]]
    + [["sweep_gpus=[0,2]", "trainer.devices=[1]", "trainer.precision=bf16-mixed", "logger=csv"]],
    ids=str,
)
def test_shipped_configs_are_valid(tmp_path: Path, overrides: list[str]) -> None:
    validate(make_cfg(tmp_path, overrides))  # no false alarm on anything we ship


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.lr=abc", "model.lr=abc must be a number"),
        ("model.lr=-1", "model.lr=-1 must be > 0"),
        ("model.lr=0", "model.lr=0 must be > 0"),
        ("data.batch_size=-4", "data.batch_size=-4 must be ≥ 1"),
        ("data.num_workers=-1", "data.num_workers=-1 must be ≥ 0"),
        ("seed=abc", "seed=abc must be an integer"),
        ("seed=1.5", "seed=1.5 must be an integer"),
        ("model.generator.ngf=0", "model.generator.ngf=0 must be ≥ 1"),
        ("callbacks.checkpoint.every_n_iters=0", "callbacks.checkpoint.every_n_iters=0 must be ≥ 1"),
        ("callbacks.samples.every_n_iters=0", "callbacks.samples.every_n_iters=0 must be ≥ 1"),
        ("max_iters=-5", "max_iters=-5 must be ≥ 1"),
        ("model.ema.decay=1.5", "model.ema.decay=1.5 must be < 1"),
        ("model.conditional=maybe", "model.conditional=maybe must be true or false"),  # from the signature
        ("trainer.precision=17", "trainer.precision=17 must be one of 64, 32, 16"),  # Lightning's Literal
        ("+model.foo=1", "ganlab.modules.dcgan.DCGAN has no argument foo"),
        ("model.lr=nan", "model.lr=nan must be a finite number"),
        ("model.lr_d=inf", "model.lr_d=inf must be a finite number"),
        ("model.optimizer.betas=[2,3]", "model.optimizer.betas=[2, 3] must be two numbers, each ≥ 0 and < 1"),
        ("model.optimizer.betas=[abc]", "model.optimizer.betas=['abc'] must be two numbers"),
        ("model.optimizer.betas=[0.5]", "model.optimizer.betas=[0.5] must be two numbers"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validate(make_cfg(tmp_path, [override]))
    assert message in str(raised.value)


def test_a_copied_value_is_named_once(tmp_path: Path) -> None:
    """``model.seed: ${seed}`` and ``data.seed: ${seed}`` are judged where the seed is set."""
    with pytest.raises(ConfigError) as raised:
        validate(make_cfg(tmp_path, ["seed=abc"]))
    assert str(raised.value).count("=abc") == 1


def test_cycle_and_pix2pix_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        validate(make_cfg(tmp_path, ["model=cyclegan", "model.lambda_a=-10", "model.pool_size=-1"]))
    assert "model.lambda_a=-10 must be ≥ 0" in str(raised.value)
    assert "model.pool_size=-1 must be ≥ 0" in str(raised.value)
    with pytest.raises(ConfigError, match=r"model\.generator\.dropout=2 must be < 1"):
        validate(make_cfg(tmp_path, ["model=pix2pix", "model.generator.dropout=2"]))


def test_cli_names_every_bad_value_in_one_line_and_builds_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_module(
        "ganlab.train",
        "model.lr=abc",
        "callbacks.checkpoint.every_n_iters=0",
        "max_iters=-5",
        "logger=none",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for name in ("model.lr=abc", "callbacks.checkpoint.every_n_iters=0", "max_iters=-5"):
        assert name in errors[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not run_dir.exists()  # nothing built, no run directory left behind


@pytest.mark.parametrize(
    ("tool", "args", "messages"),
    [
        (
            "ganlab.generate",
            ["n=abc", "nrow=0", "seed=-1"],
            ["n=abc must be an integer", "nrow=0 must be ≥ 1", "seed=-1"],
        ),
        pytest.param(
            "ganlab.explore",
            ["steps=1", "noise=-1", "ema=maybe"],
            ["steps=1 must be ≥ 2", "noise=-1", "ema=maybe must be true or false"],
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "ganlab.translate",
            ["input=a", "output=b", "tile=0", "batch_size=x"],
            ["tile=0 must be ≥ 1", "batch_size=x"],
            marks=pytest.mark.slow,
        ),
    ],
)
def test_tool_options_are_checked_first(
    tmp_path: Path, tool: str, args: list[str], messages: list[str]
) -> None:
    """Before a checkpoint is even looked for (ckpt does not exist): every bad option, one line."""
    result = run_module(tool, f"ckpt={tmp_path / 'none.ckpt'}", *args, cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and all(m in errors[0] for m in messages), result.stderr
    assert "Traceback" not in result.stderr and "Error executing job" not in result.stderr
