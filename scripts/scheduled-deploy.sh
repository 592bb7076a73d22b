#!/bin/sh
# The unattended deploy a systemd timer or cron runs (roles/schedule installs them):
#   scripts/scheduled-deploy.sh [ansible-playbook options...]
# - never prompts: no terminal, the vault password from PROSAAS_VAULT_PASSWORD_FILE;
# - one run at a time on this control host (flock on PROSAAS_SCHEDULE_LOCK);
# - a run that finds a deploy already running (this lock, or the deploy lock on the host)
#   logs one line and exits 0; any other failure exits with ansible-playbook's code.
# Output goes to stdout: the journal under systemd, the log file under cron.
# Environment: PROSAAS_VAULT_PASSWORD_FILE (required), PROSAAS_INVENTORY (default
# inventories/staging), PROSAAS_SCHEDULE_LOCK (default /run/lock/prosaas-scheduled-deploy.lock).
set -u

say() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) scheduled-deploy: $*"
}

checkout=$(cd "$(dirname "$0")/.." && pwd)
inventory=${PROSAAS_INVENTORY:-inventories/staging}
lock=${PROSAAS_SCHEDULE_LOCK:-/run/lock/prosaas-scheduled-deploy.lock}
vault_file=${PROSAAS_VAULT_PASSWORD_FILE:-}

if [ -z "$vault_file" ] || [ ! -r "$vault_file" ]; then
    say "failed: PROSAAS_VAULT_PASSWORD_FILE must name a readable file holding the vault password"
    exit 2
fi

exec 9>"$lock"
if ! flock -n 9; then
    say "skipped: a scheduled deploy is still running (lock $lock)"
    exit 0
fi

playbook="$checkout/.venv/bin/ansible-playbook"
[ -x "$playbook" ] || playbook=ansible-playbook
output=$(mktemp)
trap 'rm -f "$output"' EXIT
say "starting: $inventory deploy.yml $*"
cd "$checkout" && ANSIBLE_NOCOLOR=1 ANSIBLE_CONFIG="$checkout/ansible.cfg" \
    "$playbook" -i "$inventory" deploy.yml --vault-password-file "$vault_file" "$@" \
    < /dev/null > "$output" 2>&1
rc=$?
cat "$output"
if [ "$rc" -ne 0 ] && grep -q "another deploy is running" "$output"; then
    say "skipped: another deploy is running on the host (see the lock line above)"
    exit 0
fi
say "finished: exit code $rc"
exit "$rc"
