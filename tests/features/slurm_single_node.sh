#!/usr/bin/env bash
# A real single-node Slurm on 127.0.0.1 from Debian's packages, with accounting (slurmdbd on
# a private MariaDB) so that `sacct --json` answers: what test_slurm_source.py's live test
# uses when it is up. Never needed by CI (that test skips without it). As root:
#
#   tests/features/slurm_single_node.sh up /tmp/slurm1    # ~2 min the first time (apt)
#   export SLURM_CONF=/tmp/slurm1/slurm.conf
#   .venv/bin/python -m pytest -q tests/features/test_slurm_source.py
#   tests/features/slurm_single_node.sh down /tmp/slurm1
#
# Ports 16817-16819 (Slurm) and 13306 (MariaDB), all on 127.0.0.1; every file in DIR.
set -euo pipefail
cmd=${1:?usage: $0 up|down DIR}
dir=$(realpath -m "${2:?usage: $0 up|down DIR}")

if [ "$cmd" = down ]; then
    for p in slurmd slurmctld slurmdbd mariadb munged; do
        [ -f "$dir/$p.started" ] || continue
        pid=$(cat "$dir/$p.started")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        rm -f "$dir/$p.started"
    done
    exit 0
fi

start() {  # name, command...: run in the background, keep its pid to stop it by
    local name=$1; shift
    setsid "$@" >"$dir/log/$name.out" 2>&1 &
    echo $! >"$dir/$name.started"
}

for exe in slurmctld slurmd slurmdbd sacct mariadbd munged; do
    command -v "$exe" >/dev/null || missing=1
done
if [ -n "${missing:-}" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd mariadb-server munge
fi
mkdir -p "$dir"/{spool,state,log,db}
host=$(hostname -s)

if ! munge -n >/dev/null 2>&1; then  # no munged serving (an exited one may linger)
    [ -f /etc/munge/munge.key ] || mungekey -c
    mkdir -p /run/munge && chown munge:munge /run/munge
    su -s /bin/sh munge -c /usr/sbin/munged  # it daemonizes itself
    sleep 1
    pgrep -n -x munged >"$dir/munged.started"  # the daemon, not its exited parent
fi

[ -d "$dir/db/mysql" ] || mariadb-install-db --user=root --datadir="$dir/db" >"$dir/log/dbinit.out" 2>&1
start mariadb /usr/sbin/mariadbd --user=root --datadir="$dir/db" --socket="$dir/mysql.sock" \
    --port=13306 --bind-address=127.0.0.1
for _ in $(seq 30); do [ -S "$dir/mysql.sock" ] && break; sleep 1; done
mariadb --socket="$dir/mysql.sock" -uroot -e "create user if not exists 'slurm'@'127.0.0.1'
    identified by 'slurm'; grant all on slurm_acct_db.* to 'slurm'@'127.0.0.1';"

cat >"$dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=16819
SlurmUser=root
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=13306
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurm
EOF
chmod 600 "$dir/slurmdbd.conf"
cat >"$dir/slurm.conf" <<EOF
ClusterName=academytui
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=16819
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf
start slurmdbd /usr/sbin/slurmdbd -D
for _ in $(seq 30); do sacctmgr -i add cluster academytui >/dev/null 2>&1 && break; sleep 1; done
start slurmctld /usr/sbin/slurmctld -D -f "$SLURM_CONF"
sleep 2
start slurmd /usr/sbin/slurmd -D -f "$SLURM_CONF"
for _ in $(seq 30); do scontrol ping 2>/dev/null | grep -q UP && sinfo -h | grep -q idle && break
                       sleep 1; done
sinfo
echo "export SLURM_CONF=$SLURM_CONF"
