#!/usr/bin/env bash
# Runs the whole test suite: lint, ansible-test sanity, then unit, integration and e2e tests
# (pytest).
# Starts what it needs (dockerd, a throwaway PostgreSQL) and stops what it started.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m unit`.
# Without them, the unit, integration and deploy tests then run again on the oldest
# ansible-core supported (requirements-oldest.txt, in .venv-oldest).
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

# The oldest ansible-core the project supports (requirements.in's range), in a virtualenv of
# its own, made again only when requirements-oldest.txt changes.
OLDEST_VENV="$PROSAAS_ROOT/.venv-oldest"
ensure_oldest_venv() {
    local want have
    want=$(sha256sum "$PROSAAS_ROOT/requirements-oldest.txt" | cut -d' ' -f1)
    have=$(cat "$OLDEST_VENV/.requirements.sha256" 2>/dev/null || true)
    [ "$want" = "$have" ] && return 0
    say "installing the oldest ansible-core supported in .venv-oldest (requirements-oldest.txt)"
    { python3 -m venv --clear "$OLDEST_VENV" && "$OLDEST_VENV/bin/pip" install -q \
        --disable-pip-version-check -r "$PROSAAS_ROOT/requirements-oldest.txt"; } \
        >"$PROSAAS_STATE/pip-oldest.log" 2>&1 \
        || die "installing requirements-oldest.txt failed; see $PROSAAS_STATE/pip-oldest.log"
    echo "$want" >"$OLDEST_VENV/.requirements.sha256"
}
# What runs on it: the unit and integration tests, and two deploys (a fresh v1, then v2
# with 109; a v2 that never turns healthy, rolled back). Not the tests of what is built with
# the pinned tools alone (the collection's ansible-test sanity, the execution environment).
OLDEST_TESTS=(
    tests/unit tests/integration
    --ignore=tests/unit/test_collection.py --ignore=tests/integration/test_collection_artifact.py
    --ignore=tests/unit/test_ee_files.py
    tests/e2e/test_deploy_flow.py::test_1_fresh_deploy_of_v1_then_v2_applies_109_and_records_both
    tests/e2e/test_deploy_flow.py::test_5_v2_that_never_turns_healthy_rolls_back_to_v1
)

ensure_venv
ensure_oldest_venv
ensure_host_wheels
ensure_ssh_client
ensure_postgres_binaries
ensure_docker
ensure_base_image
build_images
# The execution environment's wheels (its image is built by its test, offline, from them).
"$PROSAAS_ROOT/scripts/ee.sh" wheels

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

if [ $# -eq 0 ]; then
    oldest=$("$OLDEST_VENV/bin/python" -c 'import ansible.release; print(ansible.release.__version__)')
    say "tests on the oldest ansible-core supported, $oldest: unit, integration, two deploys"
    "$OLDEST_VENV/bin/python" -m pytest -q -n 2 --dist loadfile "${OLDEST_TESTS[@]}"
fi

tree_after=$(work_tree_status)
if [ "$tree_after" != "$tree_before" ]; then
    printf '%s\n' "$tree_after" >&2
    die "the tests changed the work tree (above): write generated files under an ignored folder"
fi
