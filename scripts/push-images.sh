#!/usr/bin/env bash
# Push images to a private registry and print the digest a deploy runs each one by:
#   PROSAAS_REGISTRY_USER=USER PROSAAS_REGISTRY_PASSWORD_FILE=FILE \
#       scripts/push-images.sh REGISTRY [IMAGE[=REPO:TAG]...]
# REGISTRY: host[:port], as in the image names (registry.example.internal:5000). Each IMAGE of
# the engine that DOCKER_HOST names (default: the local engine) is tagged REGISTRY/REPO:TAG,
# keeping its own repository and tag (prosaas-demo/app:v2 becomes
# REGISTRY/prosaas-demo/app:v2) unless =REPO:TAG names others (a rebuilt image pushed under
# an existing tag), then pushed. No IMAGE: the demo images of scripts/images.tsv.
# Prints one line per image on stdout: `REPO:TAG sha256:<digest>`.
#
# Credentials: the user from PROSAAS_REGISTRY_USER, the password read from the file
# PROSAAS_REGISTRY_PASSWORD_FILE and handed to `docker login --password-stdin`, never on a
# command line. The login lives in a client configuration folder of this run, removed at
# exit: the docker CLI otherwise keeps it in ~/.docker/config.json of the user who logged in,
# base64, not encrypted, unless a credential helper is configured.
# The engine must trust the registry's certificate: a private CA goes in
# /etc/docker/certs.d/REGISTRY/ca.crt on the engine's machine (playbooks/prepare.yml writes
# it on the deploy hosts).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { printf 'push-images: %s\n' "$*" >&2; exit 2; }

# REPO:TAG of an image name, without the registry it may name first.
repo_and_tag() {
    local name=$1 first=${1%%/*}
    if [[ $name == */* && ($first == *.* || $first == *:* || $first == localhost) ]]; then
        name=${name#*/}
    fi
    [[ ${name##*/} == *:* ]] || die "$1: name the tag (REPO:TAG)"
    printf '%s\n' "$name"
}

demo_images() {
    local tag _
    while IFS=$'\t' read -r tag _; do
        case "$tag" in '#'* | '') continue ;; esac
        printf '%s\n' "$tag"
    done <"$ROOT/scripts/images.tsv"
}

[ $# -ge 1 ] || die "usage: scripts/push-images.sh REGISTRY [IMAGE[=REPO:TAG]...]"
registry=$1
shift
user=${PROSAAS_REGISTRY_USER:-}
password_file=${PROSAAS_REGISTRY_PASSWORD_FILE:-}
[ -n "$user" ] || die "PROSAAS_REGISTRY_USER must name the registry user"
[ -n "$password_file" ] && [ -r "$password_file" ] \
    || die "PROSAAS_REGISTRY_PASSWORD_FILE must name a readable file holding the password"
if [ $# -eq 0 ]; then
    mapfile -t images < <(demo_images)
else
    images=("$@")
fi

DOCKER_CONFIG=$(mktemp -d)
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
docker login --username "$user" --password-stdin "$registry" <"$password_file" >/dev/null \
    || die "docker login to $registry as $user failed"

for image in "${images[@]}"; do
    source=${image%%=*}
    name=$(repo_and_tag "${image#*=}")
    target="$registry/$name"
    docker tag "$source" "$target" || die "no image $source"
    output=$(docker push "$target" 2>&1) || { printf '%s\n' "$output" >&2; die "push of $target failed"; }
    digest=$(grep -oE 'digest: sha256:[0-9a-f]{64}' <<<"$output" | tail -n 1)
    [ -n "$digest" ] || { printf '%s\n' "$output" >&2; die "push of $target named no digest"; }
    printf '%s %s\n' "$name" "${digest#digest: }"
done
