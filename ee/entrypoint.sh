#!/bin/bash
# The execution environment's entrypoint: a uid without a passwd entry (OpenShift, AWX, or
# `docker run --user` as ansible-runner and ansible-navigator do) gets one, with HOME as its
# home, because ssh refuses to run for a user it cannot look up. Then the command runs.
set -e
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
    echo "runner:x:$(id -u):$(id -g):runner:${HOME:-/home/runner}:/bin/bash" >>/etc/passwd
fi
exec "$@"
