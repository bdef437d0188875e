"""Sweeps: who this job is (group, name, GPU), its result file, and the sweep's summary table."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, open_dict

from ganlab.errors import ConfigError, DiskError, PeerLost
from ganlab.files import replacing, write_json, write_text
from ganlab.redact import redact, redact_files


def job_info() -> dict[str, Any]:
    """This Hydra job: multirun or not, its number, overrides and the sweep's name."""
    if not HydraConfig.initialized():
        return {"multirun": False, "num": 0, "overrides": [], "group": None, "name": None}
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    sweep_dir = Path(hc.sweep.dir)
    return redact(  # shown in W&B (run names), summaries and result.json: never a URL's password
        {
            "multirun": multirun,
            "num": hc.job.get("num", 0) or 0,
            "overrides": list(hc.overrides.task),
            # W&B: group = the sweep directory (outputs/multirun/<date>/<time> → multirun-<date>-<time>)
            "group": "-".join(sweep_dir.parts[-3:]) if multirun else None,
            "name": (hc.job.override_dirname or f"job{hc.job.num}") if multirun else None,
        }
    )


def launched_externally() -> bool:
    """Processes started by SLURM/submitit or torchrun, not by Lightning's own launcher."""
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def is_rank_zero() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", os.environ.get("SLURM_PROCID", "0")))) == 0


def _first_int(value: str) -> int:
    """SLURM's counts may be compressed (``2(x3)``: 2 on each of 3 nodes): the first count."""
    digits = value.split("(")[0].split(",")[0]
    return int(digits) if digits.isdigit() else 0


def slurm_layout() -> tuple[int, int] | None:
    """(nodes, tasks per node) of the SLURM job step this process is a task of, when it has several
    tasks (one per DDP rank, started by srun); None outside one."""
    env = os.environ
    if "SLURM_JOB_ID" not in env or "SLURM_PROCID" not in env or int(env.get("SLURM_NTASKS", "1")) <= 1:
        return None
    nodes = _first_int(env.get("SLURM_STEP_NUM_NODES", env.get("SLURM_NNODES", "1"))) or 1
    per_node = _first_int(env.get("SLURM_STEP_TASKS_PER_NODE", env.get("SLURM_NTASKS_PER_NODE", "")))
    if not per_node:  # --ntasks without --ntasks-per-node: an even spread, else Lightning says why not
        per_node = int(env["SLURM_NTASKS"]) // nodes
    return nodes, per_node


def adopt_slurm_layout(cfg: DictConfig) -> None:
    """In a job of several SLURM tasks, one per rank: ``trainer.num_nodes`` and ``trainer.devices``
    are what SLURM started (``hydra.launcher.nodes``, ``tasks_per_node``), so a launcher override
    alone moves a run to more nodes; Lightning takes the ranks, MASTER_ADDR and the port from SLURM."""
    layout = slurm_layout()
    if layout is None:
        return
    nodes, per_node = layout
    given = (cfg.trainer.get("num_nodes", 1), cfg.trainer.get("devices", 1))
    with open_dict(cfg.trainer):
        cfg.trainer.num_nodes, cfg.trainer.devices = nodes, per_node
    if given != (nodes, per_node) and is_rank_zero():
        hosts = os.environ.get("SLURM_JOB_NODELIST", "?")
        logging.getLogger("ganlab").info(
            f"SLURM job {os.environ['SLURM_JOB_ID']}: {nodes} node(s) ({hosts}) x {per_node} task(s): "
            f"trainer.num_nodes={nodes} trainer.devices={per_node}"
        )


# gloo names the peer it lost as [address]:port; NCCL and the c10d store say so in their own words
_PEER_ADDRESS = re.compile(r"\[([0-9A-Fa-f.:]+)\]:\d+")
_LOST = ("closed by peer", "reset by peer", "broken pipe", "remote process exited", "connection refused",
         "timed out", "nccl communicator was aborted")  # fmt: skip


def _host_of(address: str) -> str:
    """``n2 (10.0.0.12)``: the host's name where the resolver knows it (a cluster's DNS or hosts)."""
    try:
        return f"{socket.gethostbyaddr(address)[0]} ({address})"
    except OSError:
        return address


def lost_peer(error: BaseException, last_checkpoint: Path | None) -> PeerLost | None:
    """A collective that failed because another rank's process or node went away, in one line that
    names the node (from the peer address the backend reports) and what the run kept."""
    text = " ".join(str(error).split())
    backend = type(error).__name__ == "DistBackendError" or any(w in text for w in ("gloo", "NCCL", "c10d"))
    if not backend or not any(w in text.lower() for w in _LOST):
        return None
    found = _PEER_ADDRESS.search(text)
    nodes = os.environ.get("SLURM_JOB_NODELIST")
    where = f"of this job (nodes {nodes})" if nodes else "of this job"
    if found:
        where = f"on {_host_of(found.group(1))}"
    why = next(w for w in _LOST if w in text.lower())
    kept = f"; saved up to {last_checkpoint}" if last_checkpoint and last_checkpoint.exists() else ""
    return PeerLost(
        f"lost the DDP rank {where} mid-training ({why}): that node or its process stopped{kept}; a "
        "requeued job (SLURM requeues after a node failure) or the same command again resumes from it"
    )


def check_multirun_ddp(cfg: DictConfig, info: dict[str, Any]) -> None:
    """Lightning's DDP launcher re-runs sys.argv per rank, which breaks under ``-m`` (hydra#2070)."""
    strategy = str(cfg.trainer.get("strategy", "auto"))
    devices = cfg.trainer.get("devices", 1)
    count = len(devices) if isinstance(devices, list | tuple | ListConfig) else devices
    several = count not in (1, "1", None)
    if info["multirun"] and strategy.startswith("ddp") and several and not launched_externally():
        raise ConfigError(
            "Lightning's DDP launcher cannot run under Hydra multirun (-m): it re-runs the sweep per "
            "rank (Lightning #18175, hydra #2070); sweep with one GPU per job (hydra/launcher=joblib "
            "sweep_gpus=N) or start ranks with hydra/launcher=submitit_slurm"
        )


def assign_gpu(cfg: DictConfig, info: dict[str, Any]) -> None:
    """``sweep_gpus=N`` (or a list): job k of a sweep trains on GPU k mod N."""
    gpus = cfg.get("sweep_gpus")
    if not info["multirun"] or gpus in (None, 0):
        return
    pool = list(range(gpus)) if isinstance(gpus, int) else list(gpus)
    cfg.trainer.accelerator = "gpu"
    cfg.trainer.devices = [pool[info["num"] % len(pool)]]


def write_result(output_dir: str | Path, result: dict[str, Any]) -> None:
    """``<run dir>/result.json``: what the sweep summary reads (works with any launcher)."""
    path = Path(output_dir) / "result.json"
    clean = redact({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()})
    try:
        write_json(path, clean)  # whole or not at all: a full disk leaves the previous file
    except DiskError as e:  # written last, while another error may be on its way out: never mask it
        print(f"warning: {e}", file=sys.stderr)


COLUMNS = ("job", "overrides", "status", "final_fid", "best_fid", "iteration", "error")


def summarize(sweep_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per job directory (jobs that left no result are 'missing'), showing the overrides
    that differ between jobs; and the overrides common to all."""
    jobs = sorted(
        (p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    results = []
    for job_dir in jobs:
        result_file = job_dir / "result.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else {"status": "missing"}
        results.append((int(job_dir.name), result))
    sets = [set(r.get("overrides") or []) for _, r in results]
    common = set.intersection(*sets) if sets else set()
    rows = []
    for num, result in results:
        row = {"job": num, **{k: result.get(k) for k in COLUMNS[2:]}}
        row["overrides"] = " ".join(o for o in result.get("overrides") or [] if o not in common)
        rows.append(row)
    return rows, sorted(common)


def format_table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    shown = [[cell(r[c]) for c in COLUMNS[:-1]] for r in rows]
    widths = [
        max(len(c), *(len(s[i]) for s in shown)) if shown else len(c) for i, c in enumerate(COLUMNS[:-1])
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS[:-1], widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(s, widths, strict=True)) for s in shown]
    return "\n".join(lines)


# jobs of the last multirun in this process that did not complete (read by ganlab.train.main)
LAST_SWEEP: dict[str, Any] = {"failed": 0, "jobs": 0, "dir": None}


class SweepSummary(Callback):
    """At the end of a multirun: ``summary.csv`` and ``summary.txt`` in the sweep dir, and printed;
    the count of jobs that did not complete is kept for the exit status."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        redact_files(sweep_dir, ("multirun.yaml",))
        rows, common = summarize(sweep_dir)
        with replacing(sweep_dir / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        table = format_table(rows)
        failed = sum(r["status"] != "completed" for r in rows)
        header = f"sweep {sweep_dir}: {len(rows)} job(s), {failed} not completed"
        text = f"{header}\ncommon overrides: {' '.join(common) or '-'}\n{table}\n"
        write_text(sweep_dir / "summary.txt", text)
        print(f"\n{text}")
        LAST_SWEEP.update(failed=failed, jobs=len(rows), dir=str(sweep_dir))
