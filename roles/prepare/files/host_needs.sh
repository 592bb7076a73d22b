#!/bin/sh
# What playbooks/prepare.yml needs of a host, asked before it changes anything, in plain sh
# (the host may lack python3): one line, `prosaas-host-needs: ready`, or what is missing,
# separated by "; ".
missing=""
add() { missing="${missing:+$missing; }$1"; }

if [ -r /etc/os-release ]; then
    . /etc/os-release
    if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
        add "Debian 12 (it runs ${PRETTY_NAME:-${ID:-an unknown system} ${VERSION_ID:-}})"
    fi
else
    add "Debian 12 (it has no /etc/os-release)"
fi
pid1=$(cat /proc/1/comm 2>/dev/null || echo unknown)
[ "$pid1" = systemd ] || add "systemd as PID 1 (PID 1 is $pid1)"
command -v python3 >/dev/null 2>&1 || add "python3"
command -v sudo >/dev/null 2>&1 || add "sudo"
echo "prosaas-host-needs: ${missing:-ready}"
