#!/usr/bin/env bash
# Deploys the demo stack on this machine: set-up, then `ansible-playbook deploy.yml`
# with the local inventory (the default in ansible.cfg). Extra arguments go to ansible-playbook.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$PROSAAS_ROOT"
setup_all
say "ansible-playbook deploy.yml $*"
ansible-playbook deploy.yml "$@"
docker ps --filter label=prosaas.project --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
