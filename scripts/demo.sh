#!/usr/bin/env bash
# Deploys the demo stack on this machine: set-up, then `ansible-playbook deploy.yml` with the
# local inventory (the default in ansible.cfg).
#
# With no arguments it tells the story of migration 109: on the first run it deploys v1 (the
# release before 109), then v2, whose migrate container applies 109 while the app is stopped;
# then it runs the verification query (3 rows). A later run deploys v2 again and changes
# nothing. With arguments, it runs one `ansible-playbook deploy.yml ARGS...` instead.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$PROSAAS_ROOT"

# After the deploy, 109's three columns must be there: the query ops run by hand.
VERIFY_SQL="SELECT column_name FROM information_schema.columns
WHERE table_name = 'call_log' AND column_name IN ('started_at', 'ended_at', 'duration_sec');"

deploy() {
    say "ansible-playbook deploy.yml $*"
    ansible-playbook deploy.yml "$@"
}

setup_all
if [ $# -gt 0 ]; then
    deploy "$@"
else
    if ! docker container inspect prosaas-api >/dev/null 2>&1; then
        say "first run: deploy v1 (migrations 0001 and 0002), the release before migration 109"
        deploy -e prosaas_app_version=v1
    fi
    say "deploy v2: stop the app, migration 109 in the migrate container, verify, start"
    deploy -e prosaas_app_version=v2
    say "the verification query: 109's columns of call_log (3 rows expected)"
    docker exec postgres psql -U prosaas -d prosaas -c "$VERIFY_SQL"
fi
docker ps --filter label=prosaas.project --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
