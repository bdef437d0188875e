"""A training run, as ``python -m ganlab.train`` (``ganlab.train``, the command's light entry) runs
it once Hydra has composed the config: build, check, fit, record."""

from __future__ import annotations

import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab import registry
from ganlab.callbacks import IterationBudget, LastCheckpoint, RunConfig, StopSignal
from ganlab.checkpoint import resume_info
from ganlab.cli import config_dir, one_line, quiet_third_party, report, user_error
from ganlab.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DiskError,
    GanlabError,
    Interrupted,
    NonFiniteLossError,
    raise_all,
)
from ganlab.files import disk_error, is_disk_error, write_text
from ganlab.loggers import define_summaries
from ganlab.metrics.callback import FIDCallback
from ganlab.plugins import load_plugins, register_run_parts
from ganlab.preflight import build
from ganlab.redact import redact, redact_files, redact_logging, redact_text, redacted_argv
from ganlab.rundir import discard_run_dir, user_folder
from ganlab.sweep import (
    adopt_slurm_layout,
    assign_gpu,
    check_multirun_ddp,
    is_rank_zero,
    job_info,
    lost_peer,
    write_result,
)
from ganlab.validate import check_run

CONFIG_DIR = config_dir()


def build_loggers(cfg: DictConfig, resume: dict[str, Any], info: dict[str, Any] | None = None) -> list[Any]:
    loggers = []
    for name, conf in (cfg.get("logger") or {}).items():
        extra: dict[str, Any] = {}
        if name == "wandb" and resume.get("wandb_run_id"):
            extra = {"id": resume["wandb_run_id"], "resume": "allow"}  # continue the same W&B run
        if name == "wandb" and info and info["multirun"]:  # one W&B group per sweep, a run per job
            extra |= {k: info[k] for k in ("group", "name") if conf.get(k) is None}
        loggers.append(instantiate(conf, **extra))
    return loggers


def build_callbacks(
    cfg: DictConfig, config: dict[str, Any], plugins: list[str] | None = None
) -> list[L.Callback]:
    callbacks = []
    if cfg.get("metrics") and cfg.metrics.get("_target_"):  # metrics=none may still carry a model_data key
        # first: Lightning runs Checkpoint callbacks last in list order, so FID (and best.ckpt) is
        # settled before LastCheckpoint writes last.ckpt with the FID state: a resume keeps the best
        callbacks.append(instantiate(cfg.metrics))
    callbacks += [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks.append(RunConfig(config, plugins or []))
    callbacks.append(StopSignal())
    if cfg.get("max_iters"):
        callbacks.append(IterationBudget(cfg.max_iters))
    return callbacks


def set_classes(cfg: DictConfig, datamodule: L.LightningDataModule) -> None:
    """A conditional model takes its classes from the data: ``model.num_classes``, ``class_names``."""
    if not cfg.model.get("conditional"):
        return
    use_labels = getattr(datamodule, "use_labels", None)
    if use_labels is None:
        raise ConfigError(
            f"model.conditional=true needs class labels, but {type(datamodule).__name__} has none"
        )
    names = use_labels()
    with open_dict(cfg):
        cfg.model.num_classes, cfg.model.class_names = len(names), list(names)


def check_pairing(model: L.LightningModule, datamodule: L.LightningDataModule, cfg: DictConfig) -> None:
    """A model trains on the kind of batch its data module makes (DCGAN: images; CycleGAN: A/B pairs)."""
    wanted, given = getattr(model, "batch_kind", None), getattr(datamodule, "batch_kind", None)
    if wanted != given:
        model_name, data_name = type(model).__name__, type(datamodule).__name__
        hint = {
            "unpaired": "data=horse2zebra or data=unpaired_folder",
            "paired": "data=facades or data=paired_folder",
        }.get(wanted, "data=mnist, data=cifar10, data=image_folder or data=celeba")
        raise ConfigError(
            f"{model_name} trains on {wanted} data but {data_name} provides {given}; use {hint}"
        )


DEPTH_SETTINGS = ("num_downs", "n_blocks", "n_layers")  # shown when a network does not fit the size


def check_sizes(model: L.LightningModule, datamodule: L.LightningDataModule, cfg: DictConfig) -> None:
    """A translation model's networks tried at the data's crop size on the meta device (no memory):
    a crop or depth that cannot train is one line with sizes that can, before anything runs."""
    preprocess = getattr(datamodule, "preprocess", None)
    check = getattr(model, "check_sizes", None)
    if check is None or getattr(preprocess, "mode", None) not in (
        "resize_and_crop",
        "crop",
        "scale_width_and_crop",
    ):
        return
    settings = {
        f"model.{key}": {k: v for k, v in (cfg.model.get(key) or {}).items() if k in DEPTH_SETTINGS}
        for key in ("generator", "discriminator")
    }
    check(int(preprocess.crop_size), settings)


def auto_resume_path(cfg: DictConfig) -> str | None:
    """``ckpt_path``, else this run directory's own last.ckpt (a requeued or repeated job continues)."""
    if cfg.get("ckpt_path"):
        return cfg.ckpt_path
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if cfg.get("auto_resume", True) and last.is_file():
        rank_zero_info(f"resuming from this run directory's {last}")
        return str(last)
    return None


def train(cfg: DictConfig) -> float | None:
    """Compose → instantiate → fit. Returns the best FID (lower is better), for sweepers."""
    info = job_info()
    result: dict[str, Any] = {"overrides": info["overrides"], "status": "failed"}
    status, config_error = 1, False
    try:
        best = _fit(cfg, info, result)
        status, result["status"] = 0, "completed"
        return best
    except BaseException as e:
        result["status"] = "interrupted" if isinstance(e, Interrupted | KeyboardInterrupt) else "failed"
        result["error"] = one_line(user_error(e) or e)
        config_error = isinstance(user_error(e), ConfigError)
        raise
    finally:
        _finish_wandb(status)
        # a config error in a folder the user made writes nothing there (a sweep job records it)
        if is_rank_zero() and not (config_error and user_folder(cfg) and not info["multirun"]):
            write_result(cfg.paths.output_dir, result)


def print_config_tree(cfg: DictConfig) -> None:
    """The composed config as a Rich tree, one branch per group (as lightning-hydra-template)."""
    from rich import print as rich_print
    from rich.syntax import Syntax
    from rich.tree import Tree

    def yaml(node: Any) -> Syntax:
        return Syntax(OmegaConf.to_yaml(node).rstrip(), "yaml", theme="ansi_dark", background_color="default")

    resolved = redact(OmegaConf.to_container(cfg, resolve=True))  # values as the run uses them, no secrets
    tree = Tree("config", guide_style="dim")
    tree.add("run").add(yaml({k: v for k, v in resolved.items() if not isinstance(v, dict)}))
    for key, value in resolved.items():
        if isinstance(value, dict):
            tree.add(str(key)).add(yaml(value))
    rich_print(tree)


def _fit(cfg: DictConfig, info: dict[str, Any], result: dict[str, Any]) -> float | None:
    load_plugins(cfg.get("plugins"))  # the user's code first: its classes are checked and built too
    check_run(cfg)
    parts, renamed = register_run_parts(OmegaConf.to_container(cfg, resolve=True))
    for path, name in renamed.items():  # checkpoints store the name the registry knows
        OmegaConf.update(cfg, f"{path}._target_", name, force_add=True)
    if (cfg.get("extras") or {}).get("print_config") and is_rank_zero():
        print_config_tree(cfg)
    adopt_slurm_layout(cfg)
    check_multirun_ddp(cfg, info)
    assign_gpu(cfg, info)
    ckpt_path = auto_resume_path(cfg)
    resume = resume_info(ckpt_path)
    if cfg.get("max_iters") and resume.get("iteration", 0) >= cfg.max_iters:  # a finished budget
        rank_zero_info(
            f"{ckpt_path} is at iteration {resume['iteration']}, max_iters={cfg.max_iters} is reached: "
            "nothing to train (raise max_iters to continue)"
        )
        result["iteration"] = resume["iteration"]
        return None
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build(cfg.data, "data")
    set_classes(cfg, datamodule)
    if cfg.data.get("root"):  # stored absolute: the tools find the folder from any directory
        with open_dict(cfg):
            cfg.data.root = str(Path(cfg.data.root).expanduser().resolve())
    config = OmegaConf.to_container(cfg, resolve=True)
    if hasattr(datamodule, "split_info"):  # folders: which files train and which are held out
        config["data_split"] = datamodule.split_info()
    model = build(cfg.model, "model")
    check_pairing(model, datamodule, cfg)
    check_sizes(model, datamodule, cfg)
    callbacks = build_callbacks(cfg, config, registry.plugin_origins(parts))
    loggers = build_loggers(cfg, resume, info)
    budget = {}
    if cfg.trainer.get("max_epochs") is None:  # max_iters, else the model's own budget (CycleGAN: 100 + 100)
        budget["max_epochs"] = -1 if cfg.get("max_iters") else getattr(model, "default_max_epochs", 25)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **budget)
    fid = next((c for c in callbacks if isinstance(c, FIDCallback)), None)
    if not info["multirun"]:  # a single run: what it needs from outside, before any logger writes
        preflight_or_nothing(datamodule, fid)
    with redacted_argv():  # wandb.init records the command line
        for logger in loggers:  # a sweep job's W&B run comes first: a failed preflight shows (failed)
            logger.log_hyperparams(redact(config))
    define_summaries(loggers)
    if info["multirun"]:
        preflight(datamodule, fid)
    stop = next(c for c in callbacks if isinstance(c, StopSignal))
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # before training began (setup, sanity check): Lightning's own check
        raise _interrupted(signal.SIGTERM, model, callbacks) from None
    except SystemExit as e:  # Lightning turns a KeyboardInterrupt (a second Ctrl-C) into exit(1)
        if isinstance(e.__context__, KeyboardInterrupt):
            raise _interrupted(signal.SIGINT, model, callbacks) from None
        raise
    except (NonFiniteLossError, DiskError, OSError) as e:
        if isinstance(e, OSError) and not is_disk_error(e):
            raise
        error = disk_error(e) if isinstance(e, OSError) else e
        last = _last_checkpoint(callbacks)
        kept = f"; last good checkpoint: {last}" if last and last.exists() else ""
        raise type(error)(f"{error}{kept}") from e
    except RuntimeError as e:
        if "state_dict" in str(e) and ckpt_path and "Error(s) in loading state_dict" in str(e):
            raise CheckpointError(
                f"ckpt_path={ckpt_path} does not fit the configured model (different model or "
                "data settings); pass the overrides of the original run (its .hydra/overrides.yaml)"
            ) from None
        raise _restore_failure(e, ckpt_path) or lost_peer(e, _last_checkpoint(callbacks)) or e from None
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:
        raise _restore_failure(e, ckpt_path) or e from None
    finally:
        result["iteration"] = getattr(model, "iteration", None)
        if fid is not None:
            result["final_fid"], result["best_fid"] = fid.last, fid.best
    if stop.received is None:
        rank_zero_info(f"training stopped: {stop_reason(cfg, trainer, model)} (iteration {model.iteration})")
    if stop.received is not None:
        error = _interrupted(stop.received, model, callbacks)
        if stop.requeue is not None:  # SIGUSR2 under submitit: requeued once the run is closed
            error = Interrupted(f"{error}; submitit requeues the job, which resumes from there")
            error.exit_code, error.requeue = 128 + signal.SIGUSR2, stop.requeue
        raise error
    return fid.best if fid is not None else None


def _restore_failure(error: BaseException, ckpt_path: str | None) -> CheckpointError | None:
    """A checkpoint's state that does not restore (crafted or damaged loops, optimizer, sampler or
    RNG state), as one line: the error was raised while Lightning or ganlab loaded it."""
    if not ckpt_path or isinstance(error, GanlabError):
        return None
    for frame, _ in traceback.walk_tb(error.__traceback__):
        code = frame.f_code
        if code.co_filename.endswith("checkpoint_connector.py") or code.co_name in RESTORING:
            short = " ".join(f"{type(error).__name__}: {error}".split())[:160]
            return CheckpointError(
                f"ckpt_path={ckpt_path} cannot be restored ({short}); the file is damaged or was edited "
                "(nothing was trained from it)"
            )
    return None


RESTORING = ("load_state_dict", "on_load_checkpoint", "_load_from_state_dict", "set_state")


def stop_reason(cfg: DictConfig, trainer: L.Trainer, model: L.LightningModule) -> str:
    """Why a run that was not interrupted ended, in the settings the user gave."""
    if cfg.get("max_iters") and getattr(model, "iteration", 0) >= cfg.max_iters:
        return f"max_iters={cfg.max_iters} reached"
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return f"trainer.max_steps={trainer.max_steps} reached"
    if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:
        given = cfg.trainer.get("max_epochs")
        if given is None and hasattr(model, "default_max_epochs"):
            return (
                f"the model's {trainer.max_epochs} epochs are done (its default: set trainer.max_epochs "
                "or max_iters)"
            )
        return f"trainer.max_epochs={trainer.max_epochs} reached"
    return "the trainer stopped (a callback asked it to)"


def preflight_or_nothing(datamodule: L.LightningDataModule, fid: FIDCallback | None) -> None:
    """``preflight``; its error is marked as one before anything started, so a single run's
    directory is removed again (only what Hydra wrote is in it) and no W&B run was made."""
    try:
        preflight(datamodule, fid)
    except GanlabError as e:
        e.nothing_started = True  # type: ignore[attr-defined]
        raise


def preflight(datamodule: L.LightningDataModule, fid: FIDCallback | None) -> None:
    """Everything a run needs from outside, before training: the data (downloaded or checked) and
    the metric weights. What is missing is named in one line, all of it, so an offline first run
    fails once, not once per missing piece."""
    problems: list[GanlabError] = []
    if is_rank_zero():  # Lightning prepares data on rank 0 too; this makes it happen first
        try:
            datamodule.prepare_data()
        except GanlabError as e:
            problems.append(e)
    if fid is not None:  # Inception, and on paired data the AlexNet weights of LPIPS
        try:
            fid.preflight(paired=getattr(datamodule, "batch_kind", None) == "paired")
        except GanlabError as e:
            problems.append(e)
    raise_all(problems, DataError)


def _interrupted(signum: int, model: L.LightningModule, callbacks: list[L.Callback]) -> Interrupted:
    """What a stopped run saved and how to continue it; exit status 128 + the signal number."""
    name = signal.Signals(signum).name
    checkpoint = next((c for c in callbacks if isinstance(c, LastCheckpoint)), None)
    iteration = getattr(model, "iteration", 0)
    if checkpoint is None or not checkpoint.last_path.is_file():
        message = f"stopped by {name} at iteration {iteration}; no checkpoint was written, nothing to resume"
    elif checkpoint.saved_iteration == iteration:
        message = (
            f"stopped by {name} after iteration {iteration}; state saved in {checkpoint.last_path}; "
            f"resume with ckpt_path={checkpoint.last_path}"
        )
    else:
        message = (
            f"stopped by {name} at iteration {iteration}, before it was saved; resume from the last "
            f"checkpoint with ckpt_path={checkpoint.last_path}"
        )
    error = Interrupted(message)
    error.exit_code = 128 + int(signum)
    return error


def _last_checkpoint(callbacks: list[L.Callback]) -> Path | None:
    return next((c.last_path for c in callbacks if isinstance(c, LastCheckpoint)), None)


def _finish_wandb(status: int) -> None:
    """One W&B run per job, always closed (wandb#1314: a live run is reused by the next job), and
    its files complete when this returns: ``finish`` hands the last records to wandb's service
    process, which writes the run file on its own schedule; ``teardown`` returns once that process
    has closed every run (a reader, ``wandb sync`` or the next job never sees half a file). An
    offline run then names its folder and the command that uploads it."""
    if "wandb" in sys.modules:
        import wandb

        run = wandb.run
        if run is not None:
            offline, folder = run.settings.mode == "offline", run.settings.sync_dir
            wandb.finish(exit_code=status)
            wandb.teardown()  # ~10 ms; the next wandb.init starts a fresh service
            if offline:
                rank_zero_info(f"W&B: offline run in {folder}; upload it with `wandb sync {folder}`")


def log_to_run_dir() -> None:
    """Lightning's messages (and ganlab's, which go through them) reach Hydra's handlers: the
    console and ``<run dir>/train.log``. Lightning gives its logger a handler of its own and stops
    propagation when it is imported before logging is configured, which left train.log empty."""
    if not any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers):
        return  # Hydra's logging is off (hydra/job_logging=none): Lightning keeps its own handler
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
            logger.removeHandler(handler)
        logger.propagate = True


def _file_log(message: str) -> None:
    """A line for train.log only (the console has its own copy on stderr)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            record = {
                "name": "ganlab",
                "levelno": logging.ERROR,
                "levelname": "ERROR",
                "msg": redact_text(message),
            }
            handler.handle(logging.makeLogRecord(record))


def run_job(cfg: DictConfig) -> float | None:
    """One Hydra job of ``ganlab.train``: the run, its record, and its error as one line."""
    quiet_third_party()  # again in this process: a sweep job of any launcher is a process of its own
    redact_logging()
    log_to_run_dir()
    redact_files(Path(HydraConfig.get().runtime.output_dir) / ".hydra")  # credentials of the command line
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        redact_files(Path(HydraConfig.get().sweep.dir), ("multirun.yaml",))
    try:
        return train(cfg)
    except Exception as e:
        error = user_error(e)
        if not (isinstance(error, ConfigError) and user_folder(cfg)):  # never append to a user's file
            _file_log(f"error: {one_line(error or e)}")
        if isinstance(error, Interrupted):  # a sweep stops too: the user (or scheduler) said stop
            report(error)
            if callable(getattr(error, "requeue", None)):  # state saved, W&B closed: submitit requeues
                error.requeue(signal.SIGUSR2, None)  # and exits
            sys.exit(error.exit_code)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # the sweep goes on: the error is in the job's directory, its W&B run marked failed
            record_failure(cfg, e)
            return float("nan")
        if error is None:
            raise  # a bug keeps its traceback
        if isinstance(error, ConfigError) or getattr(error, "nothing_started", False):
            discard_run_dir(Path(cfg.paths.output_dir))  # nothing ran: nothing of it is left
        report(error)  # a single run: one line, before Hydra's own multi-line report
        sys.exit(1)


def record_failure(cfg: DictConfig, error: BaseException) -> None:
    shown = user_error(error) or error
    report(shown)
    try:
        write_text(
            Path(cfg.paths.output_dir) / "error.txt", redact_text("".join(traceback.format_exception(error)))
        )
    except DiskError as e:  # the job's error is already on the console; the sweep goes on
        print(f"warning: {e}", file=sys.stderr)
