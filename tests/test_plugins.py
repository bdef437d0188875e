"""Your own GAN: the registry, plugins (a real installed entry point and plugins=[...]) and every
tool on a plugged-in part; a checkpoint may name a registered class, never load a plugin."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, fid_weights, run_module
from ganlab import registry
from ganlab.errors import ConfigError
from ganlab.losses import GanLoss, get_loss
from ganlab.plugins import load_plugins

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
LAB = ["--config-dir", str(EXAMPLES / "conf"), "model=lab"]  # the user's own config folder


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ installed by pip into a folder of its own: a real dist-info with its
    ``ganlab.plugins`` entry point, found through PYTHONPATH by importlib.metadata."""
    source = shutil.copytree(EXAMPLES, tmp_path_factory.mktemp("src") / "examples")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert list(target.glob("ganlab_examples-*.dist-info/entry_points.txt"))
    return target


def tool(module: str, *args: str, cwd: Path, path: Path | None = None, timeout: int = 300):
    """A ganlab command with ``path`` (an installed site folder, or a source folder) on PYTHONPATH."""
    env = {"PYTHONPATH": str(path)} if path else {"PYTHONPATH": ""}
    return run_module(module, *args, cwd=cwd, env=env, timeout=timeout)


def one_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def lab_args(mnist_root: Path, run: Path, *extra: str) -> list[str]:
    return [
        *LAB,
        *TINY,
        f"paths.data_dir={mnist_root}",
        f"hydra.run.dir={run}",
        "extras.print_config=false",
        *extra,
    ]


# --- the registry itself ---


def test_register_refuses_what_is_not_a_part_and_a_name_taken_twice() -> None:
    class NotAPart:
        pass

    with pytest.raises(registry.RegistryError, match=r"not an nn\.Module, GanModule, LightningDataModule"):
        registry.register(NotAPart)
    pair = GanLoss(d=lambda real, fake, real_label=1.0: real.mean(), g=lambda fake: fake.mean())
    registry.register.loss("test_only_loss", pair)
    assert get_loss("test_only_loss") is pair
    other = GanLoss(d=pair.d, g=lambda fake: -fake.mean())
    with pytest.raises(registry.RegistryError, match="'test_only_loss' is registered twice"):
        registry.register.loss("test_only_loss", other)
    with pytest.raises(ConfigError, match="not a registered GAN loss; choose one of minimax"):
        get_loss("no_such_loss")


def test_ganlab_parts_are_registered_and_the_registry_reaches_nothing_above_it() -> None:
    import ganlab.checkpoint  # noqa: F401  (imports every part of ganlab)

    for kind, name in [
        ("network", "ganlab.nets.dcgan.Generator"),
        ("module", "ganlab.modules.cyclegan.CycleGAN"),
        ("data", "ganlab.data.mnist.MNISTDataModule"),
        ("optimizer", "torch.optim.Adam"),
        ("loss", "hinge"),
        ("augment", "cutout"),
    ]:
        assert registry.lookup(kind, name) is not None and registry.is_builtin(kind, name), (kind, name)
    assert registry.lookup("network", "ganlab.modules.dcgan.DCGAN") is None  # a name is looked up by kind

    def ganlab_imports(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        found = {
            f"{n.module}.{a.name}" if n.module == "ganlab" else n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
            for a in n.names
        }
        found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        return {m for m in found if m == "ganlab" or m.startswith("ganlab.")}

    src = REPO / "src" / "ganlab"
    for neutral in ("registry", "plugins", "reference", "pixels", "files", "fetch", "redact", "resolvers"):
        allowed = {"ganlab.errors", "ganlab.registry", "ganlab.files"}
        assert ganlab_imports(src / f"{neutral}.py") <= allowed, neutral
    for package, never in (
        ("data", "ganlab.metrics"),
        ("metrics", "ganlab.data"),
        ("modules", "ganlab.data"),
        ("nets", "ganlab.modules"),
    ):
        for path in (src / package).glob("*.py"):
            assert not any(m.startswith(never) for m in ganlab_imports(path)), (path, never)


def test_a_plugin_that_fails_is_one_line_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('half-written plugin')\n")
    (tmp_path / "wrongkind_plugin.py").write_text(
        "from ganlab.registry import register\n\n@register\nclass Helper:\n    pass\n"
    )
    for name, pair in (("twice_a", "d=max, g=min"), ("twice_b", "d=min, g=max")):
        (tmp_path / f"{name}.py").write_text(
            f"from ganlab.plugin import GanLoss, register\nregister.loss('mine', GanLoss({pair}))\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = {
        "nowhere": "plugins=[nowhere]: nowhere failed to import (ModuleNotFoundError: No module named "
        "'nowhere'); install it or put its folder on PYTHONPATH",
        "broken_plugin": "RuntimeError: half-written plugin); fix the plugin, or leave it out",
        "wrongkind_plugin": "register(wrongkind_plugin.Helper): not an nn.Module",
        "twice_a,twice_b": "'mine' is registered twice (first by twice_a, again by twice_b)",
    }
    for given, expected in cases.items():
        with pytest.raises(ConfigError) as raised:
            load_plugins(given.split(","))
        assert expected in str(raised.value) and "\n" not in str(raised.value)
    # the command line: one line, exit 1, and no run directory (checked before Hydra makes one)
    result = tool("ganlab.train", "plugins=[broken_plugin]", "logger=none", cwd=tmp_path, path=tmp_path)
    one_line(result, "plugins=[broken_plugin]: broken_plugin failed to import")
    assert not (tmp_path / "outputs").exists()
    one_line(tool("ganlab.generate", "ckpt=x.ckpt", "plugins=[nowhere]", cwd=tmp_path), "nowhere")


@pytest.mark.slow  # builds the example package
def test_an_installed_plugin_that_fails_names_its_package(site: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(site, tmp_path / "site")
    (broken / "ganlab_examples" / "__init__.py").write_text("import no_such_dependency\n")
    result = tool("ganlab.generate", "ckpt=x.ckpt", cwd=tmp_path, path=broken)
    one_line(
        result,
        "the installed plugin examples = ganlab_examples (package ganlab-examples",
        "pip uninstall ganlab-examples",
    )


# --- a plugged-in GAN through every tool ---


@pytest.mark.slow  # ~2 min of CLI runs; CI's slow step
def test_plugin_gan_trains_survives_kill_9_and_every_tool_reads_it(
    site: Path, mnist_root: Path, weights: Path, tmp_path: Path
) -> None:
    """The example package installed (entry point, no plugins=): train model=lab (lab networks,
    relativistic GAN) with W&B offline; kill -9 mid-run; the same command resumes and ends with the
    weights of an uninterrupted run; generate, explore, evaluate (FID/KID) and export read it; the
    same checkpoint without the plugin is one line naming it, and works again with plugins=[...]."""
    budget = [
        "max_iters=40",
        "trainer.max_epochs=1000",
        "trainer.limit_train_batches=null",
        "callbacks.checkpoint.every_n_iters=2",
        "logger=wandb",
    ]
    whole = tool("ganlab.train", *lab_args(mnist_root, tmp_path / "whole", *budget), cwd=tmp_path, path=site)
    assert whole.returncode == 0, whole.stderr[-3000:]

    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "ganlab.train", *lab_args(mnist_root, run, *budget)]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, weights_only=True)["iteration"]
    assert proc.returncode == -signal.SIGKILL and 2 <= killed_at < 40
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from this run directory" in again.stdout + again.stderr
    resumed = torch.load(last, weights_only=True)
    reference = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["iteration"] == reference["iteration"] == 40
    assert resumed["ganlab_plugins"] == ["ganlab_examples"]
    assert resumed["ganlab_config"]["model"]["_target_"] == "ganlab_examples.rgan.RelativisticGAN"
    for key, value in reference["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key  # exactly the uninterrupted run
    ids = {p.name.rsplit("-", 1)[-1] for p in run.glob("wandb/offline-run-*")}
    assert ids == {resumed["wandb_run_id"]}  # the same W&B run, continued (a folder per process offline)

    ckpt = f"ckpt={last}"
    gen = tool("ganlab.generate", ckpt, "n=4", f"output={tmp_path / 'g.png'}", cwd=tmp_path, path=site)
    assert gen.returncode == 0 and (tmp_path / "g.png").is_file(), gen.stderr[-2000:]
    walk = tool("ganlab.explore", ckpt, f"output={tmp_path / 'walk.png'}", cwd=tmp_path, path=site)
    assert walk.returncode == 0 and (tmp_path / "walk.png").is_file(), walk.stderr[-2000:]
    score = tool(
        "ganlab.evaluate",
        ckpt,
        *fid_weights(weights),
        "metrics.fid.feature=64",
        "metrics.reference=test",
        "num_fake=24",
        "metrics.kid.subset_size=8",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"data_dir={mnist_root}",
        "device=cpu",
        cwd=tmp_path,
        path=site,
    )
    assert score.returncode == 0, score.stderr[-2000:]
    assert {"fid", "kid_mean"} <= set(json.loads(score.stdout.strip().splitlines()[-1]))
    onnx = tool(
        "ganlab.export", ckpt, "format=onnx", f"output={tmp_path / 'g.onnx'}", cwd=tmp_path, path=site
    )
    assert onnx.returncode == 0 and "max abs diff" in onnx.stdout, onnx.stderr[-2000:]
    official = tool("ganlab.export", ckpt, f"output={tmp_path / 'off'}", cwd=tmp_path, path=site)
    one_line(official, "is a DCGAN checkpoint; format=official is for CycleGAN and pix2pix")

    bare = tool("ganlab.generate", ckpt, f"output={tmp_path / 'bare.png'}", cwd=tmp_path)
    one_line(
        bare,
        "'ganlab_examples.rgan.RelativisticGAN', which is not a registered GAN module",
        "pass plugins=[ganlab_examples]",
    )
    assert not (tmp_path / "bare.png").exists()
    given = tool(
        "ganlab.generate",
        ckpt,
        "n=4",
        "plugins=[ganlab_examples]",
        f"output={tmp_path / 'given.png'}",
        cwd=tmp_path,
        path=EXAMPLES,  # the source folder: no dist-info, no entry point
    )
    assert given.returncode == 0, given.stderr[-2000:]
    assert (tmp_path / "given.png").read_bytes() == (tmp_path / "g.png").read_bytes()


def test_a_crafted_checkpoint_never_loads_the_plugin_it_names(mnist_root: Path, tmp_path: Path) -> None:
    """A file that names a module (in a _target_, its plugins record, or its stored plugins= option)
    gets a one-line refusal naming what to pass; the module is never imported."""
    run = tmp_path / "run"
    trained = tool(  # the example package from its source folder, named by its config (no install)
        "ganlab.train", "--config-dir", str(EXAMPLES / "conf"), "experiment=lab",
        *lab_args(mnist_root, run, "max_iters=2", "logger=none")[len(LAB):], cwd=tmp_path, path=EXAMPLES,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from ganlab.plugin import Generator, register\n@register\nclass Gen(Generator):\n    pass\n"
    )
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["ganlab_config"]["model"]["generator"]["_target_"] = "evil.Gen"
    ckpt["ganlab_config"]["plugins"] = ["evil"]
    ckpt["ganlab_plugins"] = ["evil"]
    crafted = tmp_path / "crafted.ckpt"
    torch.save(ckpt, crafted)
    result = tool(
        "ganlab.generate", f"ckpt={crafted}", "plugins=[ganlab_examples]", f"output={tmp_path / 'o.png'}",
        cwd=tmp_path, path=Path(f"{EXAMPLES}:{tmp_path}"),
    )  # fmt: skip
    one_line(
        result, "'evil.Gen', which is not a registered network", "pass plugins=[evil]", "nothing was run"
    )
    resume = tool(
        "ganlab.train",
        *lab_args(mnist_root, tmp_path / "r", "max_iters=4", "logger=none", f"ckpt_path={crafted}"),
        cwd=tmp_path,
        path=Path(f"{EXAMPLES}:{tmp_path}"),
    )
    one_line(resume, "evil.Gen")
    assert not marker.exists()  # evil.py was on the path the whole time, and never imported


@pytest.mark.slow
def test_a_one_file_plugin_resumes_and_sweeps_with_the_same_command_line(
    mnist_root: Path, tmp_path: Path
) -> None:
    """The issue's new user: mynets.py with a Generator subclass, no @register, named on the command
    line. Training, resuming with the same command line and a 2-job sweep work (the command line is
    the user's); a tool asks for the decorator once the module is given."""
    (tmp_path / "mynets.py").write_text(
        "from ganlab.plugin import Generator\n\nclass MyGen(Generator):\n    pass\n"
    )
    args = [
        *TINY,
        f"paths.data_dir={mnist_root}",
        "logger=none",
        "extras.print_config=false",
        "model.generator._target_=mynets.MyGen",
    ]
    first = tool("ganlab.train", *args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path, path=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    again = tool(
        "ganlab.train",
        *args,
        f"hydra.run.dir={tmp_path / 'b'}",
        f"ckpt_path={ckpt}",
        "trainer.max_epochs=2",
        cwd=tmp_path,
        path=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)["iteration"] == 8
    sweep = tmp_path / "sweep"
    swept = tool(
        "ganlab.train", "-m", *args, "seed=0,1", f"hydra.sweep.dir={sweep}", cwd=tmp_path, path=tmp_path
    )
    assert swept.returncode == 0, swept.stderr[-3000:]
    for job in ("0", "1"):
        saved = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert saved["ganlab_config"]["model"]["generator"]["_target_"] == "mynets.MyGen"
        assert saved["ganlab_plugins"] == ["mynets"]
    undecorated = tool("ganlab.generate", f"ckpt={ckpt}", "plugins=[mynets]", cwd=tmp_path, path=tmp_path)
    one_line(undecorated, "plugin mynets does not register", "@register")

    # SIGTERM (a scheduler's stop): the iteration is saved; the same command line continues it
    long = [*args, "trainer.max_epochs=1000", "trainer.limit_train_batches=null", "max_iters=400",
            f"hydra.run.dir={tmp_path / 'c'}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "ganlab.train", *long]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "c" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM and "after iteration" in stderr.decode(), stderr[-2000:]
    stopped = torch.load(last, weights_only=True)["iteration"]
    resumed = subprocess.run([*command[:-2], "max_iters=" + str(stopped + 3), command[-1]], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(last, weights_only=True)["iteration"] == stopped + 3


def test_load_plugins_loads_each_module_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "counted_plugin.py").write_text(
        "import builtins\nbuiltins.counted_plugin_loads = getattr(builtins, 'counted_plugin_loads', 0) + 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugins(["counted_plugin"]) == ["counted_plugin"]
    load_plugins("counted_plugin")
    import builtins

    assert builtins.counted_plugin_loads == 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"plugins=\[os;rm\]: not a module name"):
        load_plugins(["os;rm"])


@pytest.mark.slow
def test_plugin_gan_under_ddp_and_a_parallel_sweep(site: Path, mnist_root: Path, tmp_path: Path) -> None:
    """DDP ranks (Lightning starts them with the same command and environment) and joblib's worker
    processes load the installed plugin themselves."""
    ddp = tool(
        "ganlab.train", *lab_args(mnist_root, tmp_path / "ddp", "trainer=ddp_cpu", "logger=none"),
        cwd=tmp_path, path=site, timeout=600,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    saved = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["iteration"] == 4 and saved["ganlab_plugins"] == ["ganlab_examples"]
    sweep = tmp_path / "sweep"
    parallel = tool(
        "ganlab.train", "-m", *LAB, *TINY, f"paths.data_dir={mnist_root}", "logger=none", "seed=0,1",
        "hydra/launcher=parallel", f"hydra.sweep.dir={sweep}", cwd=tmp_path, path=site, timeout=600,
    )  # fmt: skip
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    for job in ("0", "1"):
        saved = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert saved["ganlab_config"]["model"]["_target_"] == "ganlab_examples.rgan.RelativisticGAN"
    assert "completed" in (sweep / "summary.txt").read_text()


@pytest.mark.slow
def test_a_translator_with_a_plugin_generator_translates_and_exports(tmp_path: Path) -> None:
    """CycleGAN with a generator of the user's (plugins=[mytrans]): translate reads it, export
    format=official says in one line why it cannot, format=onnx writes it."""
    import fabricate
    from conftest import TINY_CYCLE

    root = fabricate.unpaired_folder(tmp_path / "photos")
    (root / "trainA" / "zz_corrupt.jpg").unlink()
    (tmp_path / "mytrans.py").write_text(
        "from ganlab.plugin import register\nfrom ganlab.nets.resnet import ResnetGenerator\n\n"
        "@register\nclass MyResnet(ResnetGenerator):\n    pass\n"
    )
    run = tmp_path / "run"
    trained = tool(
        "ganlab.train", *TINY_CYCLE, f"data.root={root}", "plugins=[mytrans]",
        "model.generator._target_=mytrans.MyResnet", f"hydra.run.dir={run}", cwd=tmp_path, path=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    ckpt = f"ckpt={run / 'checkpoints' / 'last.ckpt'}"
    args = [ckpt, f"input={root / 'testA'}", f"output={tmp_path / 'out'}"]
    one_line(tool("ganlab.translate", *args, cwd=tmp_path, path=tmp_path), "pass plugins=[mytrans]")
    done = tool("ganlab.translate", *args, "plugins=[mytrans]", cwd=tmp_path, path=tmp_path)
    assert done.returncode == 0 and len(list((tmp_path / "out").iterdir())) == len(
        list((root / "testA").iterdir())
    )
    official = tool("ganlab.export", ckpt, "plugins=[mytrans]", f"output={tmp_path / 'off'}", cwd=tmp_path,
                    path=tmp_path)  # fmt: skip
    one_line(official, "model.generator is mytrans.MyResnet, a plugin's network")
    assert not (tmp_path / "off").exists()
    onnx = tool("ganlab.export", ckpt, "plugins=[mytrans]", "format=onnx", f"output={tmp_path / 't.onnx'}",
                cwd=tmp_path, path=tmp_path)  # fmt: skip
    assert onnx.returncode == 0, onnx.stderr[-2000:]


def test_a_config_naming_a_registered_class_by_another_path_stores_the_registered_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganlab.plugins import register_run_parts

    package = tmp_path / "aliaspkg"
    package.mkdir()
    (package / "__init__.py").write_text("from aliaspkg.nets import Gen\n")
    (package / "nets.py").write_text(
        "from ganlab.plugin import Generator, register\n\n@register\nclass Gen(Generator):\n    pass\n"
    )
    (tmp_path / "plainpkg.py").write_text(
        "from ganlab.plugin import Generator\n\nclass Gen(Generator):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = {
        "model": {"generator": {"_target_": "aliaspkg.Gen"}, "discriminator": {"_target_": "plainpkg.Gen"}}
    }
    parts, renamed = register_run_parts(config)
    assert renamed == {"model.generator": "aliaspkg.nets.Gen"}  # what the tools will look up
    assert ("network", "aliaspkg.nets.Gen") in parts and ("network", "plainpkg.Gen") in parts
    assert registry.lookup("network", "plainpkg.Gen") is not None  # this process: resume works
    assert registry.plugin_origins(parts) == ["aliaspkg.nets", "plainpkg"]
