"""ganlab as an installed wheel: configs inside it, a console script per tool, each tool's own --help."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("train", "generate", "explore", "translate", "evaluate", "export", "bench")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel built from this checkout, installed (without dependencies: torch and the rest are
    this venv's) into a folder of its own; (that folder, an environment that imports from it)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = (root / "dist").glob("ganlab-*.whl")
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    return target, env


def test_every_package_in_the_checkout_is_listed_for_the_wheel() -> None:
    """pyproject.toml lists the packages (conf/ is mapped into ganlab.conf): a new folder of code
    missing there installs a wheel whose imports fail (ganlab.data.sets was, once)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    src = REPO / "src"
    found = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("__init__.py")}
    found |= {"hydra_plugins"}  # a namespace package (no __init__.py): Hydra lists it
    assert found - listed == set(), "add these to [tool.setuptools] packages"


@pytest.mark.slow
def test_wheel_ships_every_config_and_a_script_per_tool(installed: tuple[Path, dict[str, str]]) -> None:
    target, _ = installed
    shipped = {
        p.relative_to(target / "ganlab" / "conf") for p in (target / "ganlab" / "conf").rglob("*.yaml")
    }
    in_checkout = {p.relative_to(REPO / "conf") for p in (REPO / "conf").rglob("*.yaml")}
    assert shipped == in_checkout and len(shipped) > 30
    code = {p.relative_to(target) for p in (target / "ganlab").rglob("*.py")}
    assert code == {p.relative_to(REPO / "src") for p in (REPO / "src" / "ganlab").rglob("*.py")}
    assert {p.name for p in (target / "bin").iterdir()} >= {f"ganlab-{t}" for t in TOOLS}
    assert (target / "hydra_plugins" / "ganlab_optuna_sweeper" / "optuna_sweeper.py").is_file()
    (wheel,) = (target.parent / "dist").glob("*.whl")
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith(("tests/", "outputs/"))]


@pytest.mark.slow
def test_installed_tools_run_from_another_folder(
    installed: tuple[Path, dict[str, str]], tmp_path: Path, mnist_root: Path
) -> None:
    target, env = installed

    def run(tool: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(target / "bin" / f"ganlab-{tool}"), *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    job = run("train", "--cfg", "job")
    assert job.returncode == 0, job.stderr[-2000:]
    assert "_target_: ganlab.modules.dcgan.DCGAN" in job.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import ganlab; print(ganlab.__file__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(target)  # the wheel, not this checkout
    result = run(
        "train", *TINY, f"paths.data_dir={mnist_root}", "logger=none", "max_iters=2", "hydra.run.dir=run"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    for tool in ("translate", "evaluate", "export", "generate", "explore"):
        text = run(tool, "--help")
        assert text.returncode == 0 and f"from {tool}.yaml" in text.stdout, (tool, text.stderr[-500:])
        assert "hparams_search" not in text.stdout  # train's config groups are not this tool's options
    bench = run("bench", "--help")
    assert bench.returncode == 0 and "usage" in bench.stdout
