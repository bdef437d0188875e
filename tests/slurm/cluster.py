"""A real one-node SLURM cluster for the tests: Debian's munged, slurmctld and slurmd, started as
background processes with every state file under one temporary folder, and stopped by PID.

Nothing is installed here (``tests/slurm/setup.sh`` does that, as root); nothing system-wide is
touched: the daemons read ``slurm.conf`` from the folder (``SLURM_CONF``), talk over their own
ports and their own munge socket, and the client commands (sbatch, squeue, scontrol: what
submitit calls) find the cluster through ``SLURM_CONF`` in the environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "scancel")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Cluster:
    """``with Cluster(folder) as cluster:`` one node (this machine, all its CPUs), one partition
    ``debug``; ``cluster.env`` is what a client needs (``SLURM_CONF``)."""

    def __init__(self, root: Path, cpus: int | None = None) -> None:
        self.root = root
        self.cpus = cpus or os.cpu_count() or 1
        self.procs: list[subprocess.Popen] = []
        self.leftover: list[int] = []
        self.host = socket.gethostname()
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def __enter__(self) -> Cluster:
        try:
            self._munge()
            self._write_conf()
            self._start([_which("slurmctld"), "-D", "-i", "-f", str(self.conf)], "slurmctld")
            self._start([_which("slurmd"), "-D", "-f", str(self.conf)], "slurmd")
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _munge(self) -> None:
        run = self.root / "munge"
        run.mkdir(mode=0o700)
        key = run / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.socket = run / "munge.socket"
        self._start(
            [_which("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={self.socket}",
             f"--pid-file={run / 'munged.pid'}", f"--log-file={run / 'munged.log'}",
             f"--seed-file={run / 'munged.seed'}"],
            "munged",
        )  # fmt: skip
        for _ in range(100):
            if self.socket.exists():
                return
            time.sleep(0.05)
        raise RuntimeError(f"munged did not start: {(run / 'munged.log').read_text(errors='replace')[-500:]}")

    def _write_conf(self) -> None:
        state, spool, logs = (self.root / d for d in ("state", "spool", "logs"))
        for d in (state, spool, logs):
            d.mkdir()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        self.conf.write_text(
            f"""ClusterName=ganlab-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={self.root / "slurmctld.pid"}
SlurmdPidFile={self.root / "slurmd.pid"}
SlurmctldLogFile={logs / "slurmctld.log"}
SlurmdLogFile={logs / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
MinJobAge=600
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _start(self, command: list[str], name: str) -> None:
        with open(self.root / f"{name}.out", "wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)

    def _wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}): {self.logs()}")
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
            state = out.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node is not idle after {timeout:.0f} s (sinfo: {state!r}): {self.logs()}")

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.rglob("*.log")) + sorted(self.root.glob("*.out")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}")
        return "\n".join(parts)

    def processes(self) -> list[int]:
        """PIDs of every process of this cluster: its daemons, and what they started (slurmstepd,
        srun, job tasks), found by ``SLURM_CONF`` in their environment."""
        marker = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
                except OSError:  # gone, or not ours to read
                    pass
        return found

    def drain(self, timeout: float = 60) -> None:
        """Cancel every job and wait until the queue is empty and every job step has ended: a job
        whose result is written may still be closing its steps (srun, slurmstepd)."""
        subprocess.run(["scancel", "--user", str(os.getuid())], env=self.env, capture_output=True)
        daemons = {p.pid for p in self.procs}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h"], env=self.env, capture_output=True, text=True).stdout
            if not queue.strip() and set(self.processes()) <= daemons:
                return
            time.sleep(0.5)

    def stop(self) -> None:
        """Jobs drained, then every daemon by PID (slurmd first), then anything still carrying this
        cluster's ``SLURM_CONF`` (a job step orphaned by a daemon that did not stop in time)."""
        if self.procs:
            with contextlib.suppress(Exception):
                self.drain()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        self.leftover = self.processes()  # the fixture asserts this is empty
        for pid in self.leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
