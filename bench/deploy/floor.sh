#!/bin/sh
# The floor of the deploy benchmark: deploy.yml's steps as bare docker CLI calls, with
# nothing around them (no validation, lock, preflight, release record or report).
#
#   floor.sh up VERSION       network, postgres, redis, migrate, then the app services
#   floor.sh deploy VERSION   stop the app, migrate once, check 109's columns, start the app
#
# Both end when prosaas-api, prosaas-calls and worker are healthy (docker inspect every
# 0.1 s). The containers, network and volume are named like the local inventory's, with
# FLOOR_PREFIX in front. Environment: FLOOR_PREFIX, FLOOR_API_PORT, FLOOR_CALLS_PORT,
# FLOOR_DB_PASSWORD; FLOOR_WAIT_S bounds each wait (default 120).
# Prints "mark PHASE EPOCH" when each phase begins and "mark end EPOCH" at the end.
set -eu

: "${FLOOR_PREFIX:?set FLOOR_PREFIX}"
: "${FLOOR_API_PORT:?set FLOOR_API_PORT}"
: "${FLOOR_CALLS_PORT:?set FLOOR_CALLS_PORT}"
: "${FLOOR_DB_PASSWORD:?set FLOOR_DB_PASSWORD}"
: "${FLOOR_WAIT_S:=120}"

NET="${FLOOR_PREFIX}net"
PG="${FLOOR_PREFIX}postgres"
APPS="${FLOOR_PREFIX}prosaas-api ${FLOOR_PREFIX}prosaas-calls ${FLOOR_PREFIX}worker"
# Passed by name (docker run -e NAME), so the password is never on a command line.
export POSTGRES_PASSWORD="$FLOOR_DB_PASSWORD"
export DATABASE_URL="postgresql://prosaas:${FLOOR_DB_PASSWORD}@postgres:5432/prosaas"
COLUMNS_SQL="SELECT count(*) FROM information_schema.columns WHERE table_name = 'call_log'
  AND column_name IN ('started_at', 'ended_at', 'duration_sec')"

fail() {
    echo "floor: $*" >&2
    exit 1
}

mark() {
    echo "mark $1 $(date +%s.%N)"
}

# Runs one app service (SERVICE VERSION ROLE [docker run options]) with the inventory's env.
run_app() {
    service=$1 version=$2 role=$3
    shift 3
    docker run -d --name "${FLOOR_PREFIX}${service}" --network "$NET" \
        --network-alias "$service" \
        -e RUN_MIGRATIONS_ON_START=0 -e RUN_MIGRATIONS=0 -e REDIS_URL=redis://redis:6379/0 \
        -e DATABASE_URL "$@" "prosaas-demo/app:${version}" "$role" > /dev/null
}

start_apps() {
    run_app prosaas-api "$1" api -p "127.0.0.1:${FLOOR_API_PORT}:8000"
    run_app prosaas-calls "$1" calls -p "127.0.0.1:${FLOOR_CALLS_PORT}:8000"
    run_app worker "$1" worker
}

# Waits until each named container has reported healthy, polling every 0.1 s (like
# deploy.yml's docker_wait, a container seen healthy once is not waited for again).
wait_healthy() {
    deadline=$(($(date +%s) + FLOOR_WAIT_S))
    pending="$*"
    while :; do
        # shellcheck disable=SC2086 # a list of names
        states=$(docker inspect -f '{{.Name}} {{.State.Health.Status}}' $pending) \
            || fail "cannot inspect $pending"
        pending=$(echo "$states" | awk '$2 != "healthy" { print substr($1, 2) }')
        [ -z "$pending" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "not healthy after ${FLOOR_WAIT_S} s: $pending"
        sleep 0.1
    done
}

migrate() {
    docker run --rm --name "${FLOOR_PREFIX}migrate" --network "$NET" -e DATABASE_URL \
        "prosaas-demo/migrate:$1" up > /dev/null
}

up() {
    mark infra
    docker network create "$NET" > /dev/null
    docker run -d --name "$PG" --network "$NET" --network-alias postgres \
        -e POSTGRES_USER=prosaas -e POSTGRES_DB=prosaas -e POSTGRES_PASSWORD \
        -v "${FLOOR_PREFIX}prosaas-pgdata:/var/lib/postgresql/data" \
        prosaas-demo/postgres:15 > /dev/null
    docker run -d --name "${FLOOR_PREFIX}redis" --network "$NET" --network-alias redis \
        prosaas-demo/redis:7 > /dev/null
    wait_healthy "$PG" "${FLOOR_PREFIX}redis"
    mark migrate
    migrate "$1"
    mark start
    start_apps "$1"
    # shellcheck disable=SC2086 # APPS is a list of names
    wait_healthy $APPS
    mark end
}

deploy() {
    mark stop
    # shellcheck disable=SC2086
    docker stop $APPS > /dev/null
    mark migrate
    migrate "$1"
    mark verify
    found=$(docker exec "$PG" psql -U prosaas -d prosaas -tAc "$COLUMNS_SQL")
    [ "$found" = 3 ] || fail "call_log has $found of 109's 3 columns after migrate"
    mark start
    # shellcheck disable=SC2086
    docker rm $APPS > /dev/null
    start_apps "$1"
    # shellcheck disable=SC2086
    wait_healthy $APPS
    mark end
}

[ $# -eq 2 ] || fail "usage: floor.sh {up|deploy} VERSION"
case $1 in
    up) up "$2" ;;
    deploy) deploy "$2" ;;
    *) fail "usage: floor.sh {up|deploy} VERSION" ;;
esac
