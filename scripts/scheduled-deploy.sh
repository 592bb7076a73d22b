#!/bin/sh
# The unattended deploy a systemd timer or cron runs (roles/schedule installs them):
#   scripts/scheduled-deploy.sh [ansible-playbook options...]
# - never prompts: no terminal, the vault password from PROSAAS_VAULT_PASSWORD_FILE;
# - one run at a time on this control host (flock on PROSAAS_SCHEDULE_LOCK);
# - a run that finds a deploy already running (this lock, or a live deploy lock) logs one
#   line naming the holder and exits 0; a stale deploy lock (a deploy that died, perhaps
#   with the app stopped) is a failure: one line, the deploy's notification, a non-zero
#   exit. Any other failure exits with ansible-playbook's code.
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
    say "skipped: $(grep -o 'deploy lock held by [^:]*' "$output" | head -n 1); another deploy is running"
    exit 0
fi
if [ "$rc" -ne 0 ] && grep -q "stale deploy lock left by" "$output"; then
    say "failed: $(grep -o 'stale deploy lock left by [^:]*' "$output" | head -n 1): RUNBOOK.md \"Stale deploy lock\""
    exit "$rc"
fi
say "finished: exit code $rc"
exit "$rc"
