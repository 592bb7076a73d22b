# shellcheck shell=bash
# Set-up steps shared by scripts/demo.sh and scripts/test.sh. Source it, then call the steps.
# Every step is safe to run again: it skips what is already done.

PROSAAS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROSAAS_STATE="$PROSAAS_ROOT/.state"
VENV="$PROSAAS_ROOT/.venv"
DEFAULT_BASE_IMAGE=python:3.11-slim-bookworm
# What the offline base holds: the interpreter and libraries the project's images need.
OFFLINE_BASE_PACKAGES=python3,python3-psycopg,python3-redis,ca-certificates
OFFLINE_BASE_SUITE=bookworm
DOCKERD_STARTED_BY_US=0
mkdir -p "$PROSAAS_STATE"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

can_apt_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
    can_apt_install || die "missing: $* (install them, or run as root on Debian so this script can)"
    if [ ! -f "$PROSAAS_STATE/apt-updated" ]; then
        apt-get update -q >"$PROSAAS_STATE/apt.log" 2>&1 || die "apt-get update failed; see $PROSAAS_STATE/apt.log"
        touch "$PROSAAS_STATE/apt-updated"
    fi
    say "installing Debian packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        >>"$PROSAAS_STATE/apt.log" 2>&1 || die "apt-get install $* failed; see $PROSAAS_STATE/apt.log"
}

ensure_venv() {
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
        || die "Python 3.11 or newer is needed as python3"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtualenv in .venv"
        python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; } \
            || die "python3 -m venv failed"
    fi
    local want have
    want=$(sha256sum "$PROSAAS_ROOT/requirements.txt" | cut -d' ' -f1)
    have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        say "installing pinned Python dependencies (requirements.txt)"
        "$VENV/bin/pip" install -q --disable-pip-version-check -r "$PROSAAS_ROOT/requirements.txt" \
            >"$PROSAAS_STATE/pip.log" 2>&1 || die "pip install failed; see $PROSAAS_STATE/pip.log"
        echo "$want" >"$VENV/.requirements.sha256"
    fi
    export PATH="$VENV/bin:$PATH"
}

# The wheels playbooks/prepare.yml copies to the test hosts (prosaas_python_packages_from:
# controller), fetched here from the package index so that no test reaches the network: the
# libraries and the platform the prepare role's defaults name.
ensure_host_wheels() {
    local folder="$PROSAAS_ROOT/.cache/wheels" choice
    mapfile -t choice < <("$VENV/bin/python" - "$PROSAAS_ROOT/roles/prepare/defaults/main.yml" <<'PY'
import sys

import yaml

defaults = yaml.safe_load(open(sys.argv[1]))
print("--only-binary=:all:", "--implementation=cp", sep="\n")
print(f"--python-version={defaults['prepare_python_wheel_python_version']}")
print(*(f"--platform={name}" for name in defaults["prepare_python_wheel_platforms"]), sep="\n")
print(*defaults["prepare_python_requirements"], sep="\n")
PY
    )
    # A dry run writes nothing; pip wants --target to choose for another platform.
    "$VENV/bin/python" -m pip install --dry-run --quiet --no-index --find-links="$folder" \
        --target="$folder/.dry-run" "${choice[@]}" >/dev/null 2>&1 && return 0
    say "downloading the wheels the test hosts install (.cache/wheels)"
    "$VENV/bin/python" -m pip download --quiet --dest="$folder" "${choice[@]}" \
        >"$PROSAAS_STATE/wheels.log" 2>&1 || die "pip download of the hosts' wheels failed; see $PROSAAS_STATE/wheels.log"
}

docker_reachable() { docker info >/dev/null 2>&1; }

start_dockerd() {
    say "starting dockerd (log: .state/dockerd.log)"
    setsid dockerd >"$PROSAAS_STATE/dockerd.log" 2>&1 </dev/null &
    echo $! >"$PROSAAS_STATE/dockerd.pid"
    local i
    for i in $(seq 1 60); do
        docker_reachable && return 0
        sleep 1
    done
    die "dockerd did not answer within 60 s; see $PROSAAS_STATE/dockerd.log"
}

ensure_docker() {
    docker_reachable && return 0
    [ -z "${DOCKER_HOST:-}" ] || die "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer: start it or unset DOCKER_HOST"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        can_apt_install || die "no Docker engine: install Docker (https://docs.docker.com/engine/install/) and start it"
        apt_install docker.io
        docker_reachable && return 0
    fi
    [ "$(id -u)" = 0 ] || die "dockerd is installed but not running: start it (sudo systemctl start docker)"
    start_dockerd
    DOCKERD_STARTED_BY_US=1
    remove_test_leftovers
}

# The names the tests give what they make: isolated stacks (t1a2b3c4d-...), the integration
# tests' containers (t-stop-..., tpx-..., ttls-...), test hosts and registries (pdreg-1a2b3c...).
# No deploy of an inventory in this repository, nor the demo stack, names anything so.
TEST_MADE_NAMES='^(t[0-9a-f]{8}-|t-[a-z]+-[0-9a-f]{8}|tpx-|ttls-|pd[a-z0-9]*-[0-9a-f]{6})'

# What killed test runs left on the engine. The deploy gives the services restart policy
# unless-stopped, so an engine that starts brings back every stack of a run killed before
# it could clean up: dozens of containers health-checking every 2 s, on two cores. An engine
# this script has just started has no test run of its own yet: whatever test-made thing it
# holds is such a leftover.
remove_test_leftovers() {
    local containers networks volumes
    containers=$({ docker ps -a --filter label=prosaas-tests --format '{{.Names}}'
        docker ps -a --format '{{.Names}}' | grep -E "$TEST_MADE_NAMES" || true; } | sort -u)
    networks=$(docker network ls --format '{{.Name}}' | grep -E "$TEST_MADE_NAMES" || true)
    volumes=$(docker volume ls -q | grep -E "$TEST_MADE_NAMES" || true)
    [ -n "$containers$networks$volumes" ] || return 0
    say "removing what killed test runs left: $(words "$containers") containers," \
        "$(words "$networks") networks, $(words "$volumes") volumes"
    # shellcheck disable=SC2086  # one name a word
    { [ -z "$containers" ] || docker rm -f $containers >/dev/null
      [ -z "$networks" ] || docker network rm $networks >/dev/null
      [ -z "$volumes" ] || docker volume rm -f $volumes >/dev/null; } \
        || say "warning: not all of them could be removed (docker ps -a; docker volume ls)"
}

words() { printf '%s\n' "$1" | grep -c . || true; }

stop_dockerd_if_started() {
    [ "$DOCKERD_STARTED_BY_US" = 1 ] || return 0
    local pid
    pid=$(cat "$PROSAAS_STATE/dockerd.pid")
    say "stopping the dockerd this run started (pid $pid)"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
}

debian_mirror() {
    # The mirror apt already uses, so a machine behind a local mirror keeps using it.
    local uri
    uri=$(grep -rhoE '^(deb +|URIs: *)https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n 1)
    echo "${DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

build_offline_base() {
    local tag=$1 rootfs="$PROSAAS_STATE/rootfs"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    say "building the base image $tag offline from Debian's packages (debootstrap, about a minute)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$OFFLINE_BASE_PACKAGES" "$OFFLINE_BASE_SUITE" "$rootfs" \
        "$(debian_mirror)" >"$PROSAAS_STATE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $PROSAAS_STATE/debootstrap.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null \
        || die "docker import of the offline base failed"
    rm -rf "$rootfs"
}

ensure_base_image() {
    local wanted=${BASE_IMAGE:-$DEFAULT_BASE_IMAGE}
    if docker image inspect "$wanted" >/dev/null 2>&1 || docker pull -q "$wanted" >/dev/null 2>&1; then
        export BASE_IMAGE=$wanted
        return 0
    fi
    # The tag names what is inside, so a change of packages builds a new base.
    local digest tag
    digest=$(printf '%s %s' "$OFFLINE_BASE_SUITE" "$OFFLINE_BASE_PACKAGES" | sha256sum | cut -c1-12)
    tag="prosaas-deploy/base:$OFFLINE_BASE_SUITE-$digest"
    docker image inspect "$tag" >/dev/null 2>&1 || build_offline_base "$tag"
    export BASE_IMAGE=$tag
}

build_image() {
    local tag=$1 context=$2
    shift 2
    # The classic builder works on every engine version; BuildKit needs buildx, which may be absent.
    DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" "$@" -t "$tag" "$context" \
        >>"$PROSAAS_STATE/build.log" 2>&1 || die "docker build of $tag failed; see $PROSAAS_STATE/build.log"
}

# The migrate image's build lints its migrations with the pinned squawk (migrations/Dockerfile).
stage_squawk() {
    install -D -m 0755 "$VENV/bin/squawk" "$PROSAAS_ROOT/migrations/.build/squawk" \
        || die "cannot stage squawk for the migrate image's lint: is the virtualenv set up?"
}

build_images() {
    say "building the images (base: $BASE_IMAGE)"
    : >"$PROSAAS_STATE/build.log"
    stage_squawk
    local tag context args arg
    while IFS=$'\t' read -r tag context args; do
        case "$tag" in '#'* | '') continue ;; esac
        local build_args=()
        for arg in $args; do build_args+=(--build-arg "$arg"); done
        build_image "$tag" "$PROSAAS_ROOT/$context" "${build_args[@]}"
    done <"$PROSAAS_ROOT/scripts/images.tsv"
}

setup_all() {
    ensure_venv
    ensure_docker
    ensure_base_image
    build_images
}
