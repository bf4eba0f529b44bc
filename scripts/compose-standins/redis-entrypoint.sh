#!/bin/sh
# As the official redis image's entrypoint: redis-server runs as the user redis and owns /data;
# protected mode is off (the official image builds it off), since other containers connect.
set -e
if [ "$1" = redis-server ]; then
  shift
  if [ "${1%.conf}" != "${1:-}" ]; then
    config=$1
    shift
    set -- redis-server "$config" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
