#!/usr/bin/env bash
# Runs the whole test suite: lint, ansible-test sanity, then unit, integration and e2e tests
# (pytest).
# Starts what it needs (dockerd, a throwaway PostgreSQL) and stops what it started.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m unit`.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$PROSAAS_ROOT"
trap stop_dockerd_if_started EXIT

ensure_postgres_binaries() {
    [ -n "${TEST_DATABASE_URL:-}" ] && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_install postgresql
}

# What git sees before the run: the tests must leave the work tree as they found it.
work_tree_status() { git -C "$PROSAAS_ROOT" status --porcelain 2>/dev/null || true; }
tree_before=$(work_tree_status)

# The test hosts are reached over SSH (tests/ssh_hosts.py).
ensure_ssh_client() {
    command -v ssh >/dev/null 2>&1 && command -v ssh-keyscan >/dev/null 2>&1 || apt_install openssh-client
}

ensure_venv
ensure_host_wheels
ensure_ssh_client
ensure_postgres_binaries
ensure_docker
ensure_base_image
build_images

say "lint: ruff, yamllint, ansible-lint"
ruff check .
ruff format --check .
yamllint --strict .
ansible-lint --offline -q

# ansible-test's sanity tests (validate-modules, pylint, import, ...) on the prosaas.deploy
# collection assembled from the checkout; its virtualenvs are made once, in .venv-sanity.
say "sanity: ansible-test sanity on the prosaas.deploy collection (scripts/collection.py)"
python scripts/collection.py sanity

say "tests: pytest, on two workers (one test file each at a time; -n 0 runs in one process)"
python -m pytest -n 2 --dist loadfile --durations=30 "$@"

tree_after=$(work_tree_status)
if [ "$tree_after" != "$tree_before" ]; then
    printf '%s\n' "$tree_after" >&2
    die "the tests changed the work tree (above): write generated files under an ignored folder"
fi
