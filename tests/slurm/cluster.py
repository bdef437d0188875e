"""A real SLURM cluster for the tests: Debian's munged, slurmctld and slurmd, started as background
processes with every state file under one temporary folder, and stopped by PID.

Nothing is installed here (``tests/slurm/setup.sh`` does that, as root); nothing system-wide is
touched: the daemons read ``slurm.conf`` from the folder (``SLURM_CONF``), talk over their own
ports and their own munge socket, and the client commands (sbatch, squeue, scontrol: what
submitit calls) find the cluster through ``SLURM_CONF`` in the environment.

``Cluster(folder)`` is one node, this machine. ``Cluster(folder, nodes=2)`` makes hosts: network
namespaces it creates (``ip netns``) joined by a bridge in a namespace of its own, each host in its
own UTS and mount namespace (its own hostname, and an ``/etc/hosts`` naming every host, bind-mounted
over the machine's inside that namespace only). slurmctld runs on host ``ctl``, one slurmd on each
of ``n1``, ``n2``…; the client commands run on ``ctl`` (``cluster.command``), as on a login node.
Every address is one the fixture made inside its own namespaces; at the end it removes them and
the processes in them, by PID.
"""

from __future__ import annotations

import contextlib
import itertools
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


def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def _which(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class NamespaceError(RuntimeError):
    """This machine does not let the fixture make network namespaces (the tests skip, saying why)."""


def namespaces_unavailable() -> str | None:
    """Why hosts cannot be made here (not root, no ip/unshare, namespaces refused); None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian's iproute2 and util-linux)"
    probe = f"glprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        command = ["nsenter", f"--net=/var/run/netns/{probe}", "unshare", "--uts", "--mount", "true"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            return f"unshare --uts --mount: {done.stderr.strip()}"
    except NamespaceError as e:
        return str(e)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


_NUMBERS = itertools.count(1)  # clusters made by this process


class Cluster:
    """``with Cluster(folder) as cluster:`` one node (this machine, all its CPUs), one partition
    ``debug``; ``cluster.env`` is what a client needs (``SLURM_CONF``)."""

    def __init__(self, root: Path, cpus: int | None = None, nodes: int = 1) -> None:
        self.root = root
        self.cpus = cpus or os.cpu_count() or 1
        self.procs: list[subprocess.Popen] = []
        self.leftover: list[int] = []
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.multi = nodes > 1
        if self.multi:  # hosts of their own: ctl (slurmctld, clients) and n1..nN (slurmd)
            number = next(_NUMBERS)
            tag = f"gl{os.getpid() % 100000}x{number}"
            self.subnet = f"10.{200 + os.getpid() % 50}.{number % 250}"  # private, this cluster's own
            self.netns = {"ctl": f"{tag}c", **{f"n{i}": f"{tag}n{i}" for i in range(1, nodes + 1)}}
            self.address = {"ctl": f"{self.subnet}.1"}
            self.address |= {f"n{i}": f"{self.subnet}.{10 + i}" for i in range(1, nodes + 1)}
            self.nodes = [n for n in self.netns if n != "ctl"]
            self.host = "ctl"
        else:
            self.netns, self.address = {}, {}
            self.host = socket.gethostname()
            self.nodes = [self.host]
        self.node_procs: dict[str, subprocess.Popen] = {}
        self.made_netns: list[str] = []

    def __enter__(self) -> Cluster:
        try:
            if self.multi:
                self._hosts()
            self._munge()
            self._write_conf()
            self._start([_which("slurmctld"), "-D", "-i", "-f", str(self.conf)], "slurmctld", "ctl")
            for node in self.nodes:
                self.start_node(node)
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    # --- hosts (nodes > 1) ---

    def _hosts(self) -> None:
        """The namespaces, a bridge on ``ctl`` and a veth pair to each node, and the hosts file."""
        ctl = self.netns["ctl"]
        for ns in self.netns.values():
            _ip("netns", "add", ns)
            self.made_netns.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ctl, "link", "add", "br0", "type", "bridge")
        _ip("-n", ctl, "addr", "add", f"{self.address['ctl']}/24", "dev", "br0")
        _ip("-n", ctl, "link", "set", "br0", "up")
        for node in self.nodes:
            ns = self.netns[node]
            _ip("-n", ctl, "link", "add", f"v{node}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", ctl, "link", "set", f"v{node}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address[node]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
        lines = ["127.0.0.1 localhost", *(f"{addr} {name}" for name, addr in self.address.items())]
        self.hosts_file = self.root / "hosts"
        self.hosts_file.write_text("\n".join(lines) + "\n")

    def on_host(self, host: str, command: list[str]) -> list[str]:
        """``command`` as run on ``host``: its network namespace, its hostname, its /etc/hosts."""
        if not self.multi:
            return command
        script = 'mount --bind "$0" /etc/hosts && hostname "$1" && shift && exec "$@"'
        # nsenter, not ip netns exec: that one remounts /sys, hiding the cgroup tree slurmd reads
        netns = f"--net=/var/run/netns/{self.netns[host]}"
        return ["nsenter", netns, "unshare", "--uts", "--mount", "--propagation", "private",
                "sh", "-c", script, str(self.hosts_file), host, *command]  # fmt: skip

    def command(self, *args: str) -> list[str]:
        """A client command (sbatch, squeue, python -m ganlab.train -m …) on the login host."""
        return self.on_host("ctl", list(args)) if self.multi else list(args)

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, check=check)

    def start_node(self, node: str) -> None:
        """slurmd of ``node`` (again, after ``kill_node``: the node returns to service)."""
        name = f"slurmd-{node}" if self.multi else "slurmd"
        args = ["-N", node] if self.multi else []
        self.node_procs[node] = self._start([_which("slurmd"), "-D", *args, "-f", str(self.conf)], name, node)

    def signal_when_training(self, launcher: subprocess.Popen, samples: Path, timeout: float = 300) -> None:
        """SIGUSR2 (SLURM's warning before a time limit) to the running job, once its first sample
        grid shows training is under way."""
        deadline = time.monotonic() + timeout
        while not (samples.is_dir() and any(samples.glob("*.png"))):
            assert launcher.poll() is None and time.monotonic() < deadline, self.logs()
            time.sleep(0.2)
        job = self.run("squeue", "-h", "-o", "%i").stdout.strip()
        self.run("scancel", "--signal=USR2", job, check=True)

    def finish(self, launcher: subprocess.Popen, timeout: float = 400, settle: float = 5) -> str:
        """Wait for ``launcher`` (a sweep under ``hydra/launcher=slurm``) and return its output. A
        requeued job waits out a begin time SLURM gives it (about two minutes): it is released
        (``scontrol update StartTime=now``, what an operator may do) once nothing of its previous run
        has been left for ``settle`` seconds, so the tests do not wait. (Released within a second of
        a lost node's return, the new run never got its srun step: "Requested nodes are busy".)"""
        deadline = time.monotonic() + timeout
        released: set[str] = set()
        clear_since: dict[str, float] = {}
        while launcher.poll() is None and time.monotonic() < deadline:
            for line in self.run("squeue", "-h", "-t", "PD", "-o", "%i %r").stdout.splitlines():
                job, _, reason = line.partition(" ")
                if reason.strip() != "BeginTime" or job in released:
                    continue
                if not self._gone(job, launcher.pid):
                    clear_since.pop(job, None)
                elif time.monotonic() - clear_since.setdefault(job, time.monotonic()) >= settle:
                    self.run("scontrol", "update", f"JobId={job}", "StartTime=now")
                    released.add(job)
            time.sleep(0.5)
        output, _ = launcher.communicate(timeout=max(1.0, deadline - time.monotonic()))
        return output

    def _gone(self, job: str, launcher: int) -> bool:
        """Nothing left of the job's previous run: no step SLURM still counts, every node idle (a
        step on a lost node is cleared only later, and a node just back is not yet ready: a new run
        started before that never gets its step, srun saying "Requested nodes are busy"), and no
        process but the daemons and the ``launcher`` (the sweep waiting for its jobs: it carries
        ``SLURM_CONF`` too) with what it runs (squeue, sacct)."""
        steps = self.run("squeue", "-h", "-s", "-j", job).stdout.strip()
        if steps or self.run("sinfo", "-h", "-N", "-o", "%T").stdout.split() != ["idle"] * len(self.nodes):
            return False  # a node still busy with the old run, or back but not yet idle
        daemons = {p.pid for p in self.procs if p.poll() is None} | self._helpers()
        return set(self.processes()) <= daemons | _descendants(launcher)

    def kill_node(self, node: str) -> list[int]:
        """The node is lost: every process on it (its slurmd, job steps and tasks: the processes in its
        network namespace) killed by PID at once, as a power failure would. Returns the PIDs."""
        done = subprocess.run(["ip", "netns", "pids", self.netns[node]], capture_output=True, text=True)
        pids = [int(p) for p in done.stdout.split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.node_procs[node].wait(timeout=10)
        return pids

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
        if self.multi:  # each host has the machine's CPUs; their memory is shared out
            for node in self.nodes:
                (spool / node).mkdir()
            spool = spool / "%n"
            memory //= len(self.nodes)
            nodes = "\n".join(
                f"NodeName={n} NodeAddr={self.address[n]} NodeHostname={n} CPUs={self.cpus} "
                f"RealMemory={memory} State=UNKNOWN"
                for n in self.nodes
            )
            node_list = ",".join(self.nodes)
            slurmd_files = f"SlurmdPidFile={self.root}/slurmd-%n.pid\nSlurmdLogFile={logs}/slurmd-%n.log"
            controller = f"{self.host}({self.address['ctl']})"
        else:
            nodes = (
                f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN"
            )
            node_list = self.host
            slurmd_files = f"SlurmdPidFile={self.root / 'slurmd.pid'}\nSlurmdLogFile={logs / 'slurmd.log'}"
            controller = f"{self.host}(127.0.0.1)"
        self.conf.write_text(
            f"""ClusterName=ganlab-test
SlurmctldHost={controller}
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
{slurmd_files}
SlurmctldLogFile={logs / "slurmctld.log"}
SlurmdParameters=config_overrides
SlurmdTimeout=10
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
{nodes}
PartitionName=debug Nodes={node_list} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _start(self, command: list[str], name: str, host: str | None = None) -> subprocess.Popen:
        with open(self.root / f"{name}.out", "wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                self.on_host(host, command) if host else command,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def _wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}): {self.logs()}")
            state = self.run("sinfo", "-h", "-N", "-o", "%T").stdout.split()
            if state == ["idle"] * len(self.nodes):
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

    def _helpers(self) -> set[int]:
        """slurmctld's own helper process (``slurmscriptd``, forked at start): part of the daemon,
        not a job; without it the drain waited out its whole timeout."""
        found = set()
        for pid in self.processes():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"slurmctld: slurmscriptd"):
                    found.add(pid)
        return found

    def drain(self, timeout: float = 60) -> None:
        """Cancel every job and wait until the queue is empty and every job step has ended: a job
        whose result is written may still be closing its steps (srun, slurmstepd)."""
        self.run("scancel", "--user", str(os.getuid()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            daemons = {p.pid for p in self.procs if p.poll() is None} | self._helpers()
            queue = self.run("squeue", "-h").stdout
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
        for ns in self.made_netns:  # anything still on a host, then the host itself
            done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            self.leftover += [int(p) for p in done.stdout.split() if int(p) not in self.leftover]
        for pid in self.leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # its links and the bridge go with it; a host's name stays busy while a process just killed
        # still holds a mount namespace that copied it, so the deletion is retried for a few seconds
        deadline = time.monotonic() + 10
        while self.made_netns and time.monotonic() < deadline:
            for ns in self.made_netns:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            self.made_netns = [ns for ns in self.made_netns if ns in self.remaining_namespaces()]
            if self.made_netns:
                time.sleep(0.5)

    def remaining_namespaces(self) -> list[str]:
        """The fixture's namespaces still on the machine (asserted empty after ``stop``)."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        ours = set(self.netns.values())
        return [line.split()[0] for line in listed.splitlines() if line.split() and line.split()[0] in ours]
