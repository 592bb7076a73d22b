#!/bin/bash
# Write the configuration the deploy passed, check it, then become HAProxy.
set -euo pipefail
if [ -z "${HAPROXY_CONFIG:-}" ]; then
    echo "proxy: HAPROXY_CONFIG is empty: the deploy passes the whole configuration" >&2
    exit 2
fi
printf '%s\n' "$HAPROXY_CONFIG" > /run/haproxy/haproxy.cfg
haproxy -c -q -f /run/haproxy/haproxy.cfg
exec haproxy -W -db -f /run/haproxy/haproxy.cfg
