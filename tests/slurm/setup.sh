#!/usr/bin/env bash
# Installs what the SLURM tests need (tests/test_slurm.py): Debian's munge, slurmctld, slurmd and the
# client commands. Run as root (CI does); nothing is configured or started here: the tests start
# their own one-node cluster under a temporary folder and stop it by PID.
set -euo pipefail
needed=(munged slurmctld slurmd sinfo sbatch squeue scontrol scancel)
missing=()
for b in "${needed[@]}"; do command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then echo "slurm: already installed ($(slurmctld -V))"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm: ${missing[*]} missing and not root: run 'sudo apt-get install munge slurmctld slurmd slurm-client'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true  # a fresh machine may have no package lists
apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
echo "slurm: installed ($(slurmctld -V))"
