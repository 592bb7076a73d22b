#!/bin/sh
# Initialise $PGDATA on first start, then exec postgres (PID 1, so signals reach it).
set -eu

: "${POSTGRES_USER:=prosaas}"
: "${POSTGRES_DB:=prosaas}"
: "${PGDATA:=/var/lib/postgresql/data}"

fail() {
    echo "docker-entrypoint: $*" >&2
    exit 1
}

# Prints the path of a file holding the password (never the password itself).
password_file() {
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        [ -r "$POSTGRES_PASSWORD_FILE" ] \
            || fail "POSTGRES_PASSWORD_FILE=$POSTGRES_PASSWORD_FILE is not a readable file"
        echo "$POSTGRES_PASSWORD_FILE"
        return
    fi
    tmp=$(mktemp)  # mktemp creates it with mode 0600
    printf '%s\n' "$POSTGRES_PASSWORD" > "$tmp"
    echo "$tmp"
}

create_database() {
    [ "$POSTGRES_DB" = postgres ] && return
    pg_ctl -D "$PGDATA" -w -s -o "-c listen_addresses=''" start
    echo 'CREATE DATABASE :"db";' \
        | psql -X -q -v ON_ERROR_STOP=1 -v db="$POSTGRES_DB" -U "$POSTGRES_USER" -d postgres
    pg_ctl -D "$PGDATA" -w -s -m fast stop
}

initialise() {
    echo "docker-entrypoint: initialising a new cluster in $PGDATA (user $POSTGRES_USER)"
    pwfile=$(password_file)
    status=0
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust \
        --encoding=UTF8 --locale=C.UTF-8 > /dev/null || status=$?
    [ "$pwfile" = "${POSTGRES_PASSWORD_FILE:-}" ] || rm -f "$pwfile"
    [ "$status" -eq 0 ] || fail "initdb failed (exit $status)"
    {
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    create_database
    echo "docker-entrypoint: database $POSTGRES_DB ready"
}

if [ -z "${POSTGRES_PASSWORD:-}" ] && [ -z "${POSTGRES_PASSWORD_FILE:-}" ]; then
    fail "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (the password is required)"
fi
[ -s "$PGDATA/PG_VERSION" ] || initialise
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
