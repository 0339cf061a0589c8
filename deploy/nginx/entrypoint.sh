#!/bin/sh
# The gateway's start: nginx with an upstream of every replica that the DNS name "vae" resolves to,
# kept current by resolving again every few seconds and reloading nginx when the set changes (a
# graceful reload: requests in flight finish on the old workers). This follows `--scale`, restarts
# and replacements under any engine, Docker or podman, with no resolver address to configure and
# nothing newer than Debian's nginx 1.22 (the `resolve` parameter of upstream servers needs 1.27.3).
set -eu

name="${GATEWAY_REPLICAS:-vae}"          # the replicas' DNS name on the compose network
port="${GATEWAY_REPLICA_PORT:-8000}"
every="${GATEWAY_RESOLVE_SECONDS:-2}"
folder=/tmp/gateway                      # tmpfs: the root filesystem is read-only
mkdir -p "$folder"

replicas() {
    getent ahostsv4 "$name" 2>/dev/null | awk '{ print $1 }' | sort -u | tr '\n' ' '
}

write() {  # the upstream's servers, replaced in one rename
    {
        for address in $1; do
            echo "server $address:$port max_fails=3 fail_timeout=10s;"
        done
        [ -n "$1" ] || echo "server 127.0.0.1:9 down;  # no replica resolved yet"
    } > "$folder/replicas.conf.new"
    mv "$folder/replicas.conf.new" "$folder/replicas.conf"
}

current=$(replicas)
write "$current"
nginx -g 'daemon off;' &
nginx_pid=$!
# SIGTERM from `docker stop`: nginx's graceful stop (QUIT) lets requests in flight finish
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT

while kill -0 "$nginx_pid" 2>/dev/null; do
    sleep "$every" &
    wait $! || true
    found=$(replicas)
    if [ "$found" != "$current" ]; then
        echo "gateway: replicas now $found(were ${current:-none})" >&2
        current=$found
        write "$current"
        nginx -s reload
    fi
done
wait "$nginx_pid"
