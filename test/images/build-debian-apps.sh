#!/usr/bin/env bash
# Builds real Redis and PostgreSQL images from this machine's Debian packages (redis-server,
# postgresql), with `docker import`: no registry is ever contacted. Each image is the busybox test
# image's file system, the program's files and the shared libraries ldd names; EXPOSE is set as
# the upstream images set it (redis 6379, postgres 5432).
#   mesh-test/redis:latest     redis-server, no persistence, open to the container networks
#   mesh-test/postgres:latest  initdb on first start (trust auth), then postgres as user postgres
#   mesh-test/pg-redis-clients:latest  busybox httpd/sh with redis-cli and psql (the app tiers)
set -euo pipefail
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
for need in /usr/bin/redis-server /usr/bin/redis-cli "$pgbin/postgres" "$pgbin/initdb" "$pgbin/psql"; do
  if ! [ -x "$need" ]; then
    echo "build-debian-apps: $need is missing; install Debian's redis-server and postgresql" >&2
    exit 1
  fi
done
docker image inspect mesh-test/busybox:latest >/dev/null 2>&1 || bash "$(dirname "$0")/build-busybox.sh"
pgdir=$(dirname "$pgbin")
pgshare=/usr/share/postgresql/$(basename "$pgdir")

roots=()
trap 'rm -rf "${roots[@]}"' EXIT

# A new root file system: the busybox test image's, with a postgres user.
base() {
  local root cid
  root=$(mktemp -d)
  roots+=("$root")
  cid=$(docker create mesh-test/busybox:latest)
  docker export "$cid" | tar -C "$root" -x
  docker rm "$cid" >/dev/null
  chmod 1777 "$root/tmp"
  echo 'postgres:x:999:999:postgres:/data:/bin/sh' >>"$root/etc/passwd"
  echo 'postgres:x:999:' >>"$root/etc/group"
  made=$root
}

with_libraries() {
  local root=$1
  shift
  for program in "$@"; do
    cp --parents -L "$program" "$root"
    ldd "$program" | awk '/=>/ && $3 ~ /^\// {print $3} /^[ \t]*\/lib/ {print $1}' |
      while read -r lib; do cp --parents -L "$lib" "$root"; done
  done
}

import() {
  local root=$1 image=$2
  shift 2
  local changes=()
  for change in "$@"; do changes+=(--change "$change"); done
  tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
  echo "built $image"
}

base
redis=$made
with_libraries "$redis" /usr/bin/redis-server
import "$redis" mesh-test/redis:latest 'EXPOSE 6379' \
  'CMD ["/usr/bin/redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'

base
postgres=$made
with_libraries "$postgres" "$pgbin/postgres" "$pgbin/initdb" "$pgbin/pg_ctl"
cp -r --parents "$pgdir/lib" "$pgshare" /usr/share/zoneinfo "$postgres"
# The JIT (llvmjit, with LLVM behind it) is most of the size and off unless asked for.
rm -rf "$postgres$pgdir"/lib/llvmjit* "$postgres$pgdir"/lib/bitcode
for lib in "$postgres$pgdir"/lib/*.so; do with_libraries "$postgres" "${lib#"$postgres"}"; done
mkdir -p "$postgres/data"
chown 999:999 "$postgres/data"
chmod 700 "$postgres/data"
cat >"$postgres/bin/postgres-start" <<START
#!/bin/sh
# As the official image does on a first start: a new cluster, then the server on every address.
set -e
if ! [ -s /data/PG_VERSION ]; then
  $pgbin/initdb -D /data -U postgres --auth=trust -E UTF8 --locale=C >/tmp/initdb.log
  echo 'host all all 0.0.0.0/0 trust' >>/data/pg_hba.conf
fi
exec $pgbin/postgres -D /data -c listen_addresses='*' -c unix_socket_directories=/tmp
START
chmod 755 "$postgres/bin/postgres-start"
import "$postgres" mesh-test/postgres:latest 'EXPOSE 5432' 'USER postgres' 'ENV TZ=UTC' \
  'CMD ["/bin/postgres-start"]'

base
clients=$made
with_libraries "$clients" /usr/bin/redis-cli "$pgbin/psql"
ln -s "$pgbin/psql" "$clients/bin/psql"
import "$clients" mesh-test/pg-redis-clients:latest 'CMD ["/bin/sh"]'
