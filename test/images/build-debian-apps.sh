#!/usr/bin/env bash
# Builds real images from this machine's Debian packages, with `docker import`: no registry is
# ever contacted. Each image is the busybox test image's file system, the program's files and the
# shared libraries ldd names; EXPOSE is set as the upstream images set it.
#   redis     mesh-test/redis:latest     redis-server, no persistence, open to the container networks
#   postgres  mesh-test/postgres:latest  initdb on first start (trust auth), then postgres as user postgres
#   clients   mesh-test/pg-redis-clients:latest  busybox httpd/sh with redis-cli and psql (the app tiers)
#   dnsmasq   mesh-test/dnsmasq:latest   dnsmasq in the foreground, as root, options from its command
# Usage: build-debian-apps.sh [IMAGE...]   (default: all of them)
set -euo pipefail
images=("$@")
((${#images[@]})) || images=(redis postgres clients dnsmasq)
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
for image in "${images[@]}"; do
  case $image in
  redis) needs=(/usr/bin/redis-server) package=redis-server ;;
  postgres) needs=("$pgbin/postgres" "$pgbin/initdb") package=postgresql ;;
  clients) needs=(/usr/bin/redis-cli "$pgbin/psql") package="redis-server and postgresql" ;;
  dnsmasq) needs=(/usr/sbin/dnsmasq) package=dnsmasq-base ;;
  *)
    echo "build-debian-apps: no image $image (redis, postgres, clients, dnsmasq)" >&2
    exit 2
    ;;
  esac
  for need in "${needs[@]}"; do
    if ! [ -x "$need" ]; then
      echo "build-debian-apps: $need is missing; install Debian's $package" >&2
      exit 1
    fi
  done
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

redis() {
  base
  local root=$made
  with_libraries "$root" /usr/bin/redis-server
  import "$root" mesh-test/redis:latest 'EXPOSE 6379' \
    'CMD ["/usr/bin/redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'
}

postgres() {
  base
  local root=$made
  with_libraries "$root" "$pgbin/postgres" "$pgbin/initdb" "$pgbin/pg_ctl"
  cp -r --parents "$pgdir/lib" "$pgshare" /usr/share/zoneinfo "$root"
  # The JIT (llvmjit, with LLVM behind it) is most of the size and off unless asked for.
  rm -rf "$root$pgdir"/lib/llvmjit* "$root$pgdir"/lib/bitcode
  for lib in "$root$pgdir"/lib/*.so; do with_libraries "$root" "${lib#"$root"}"; done
  mkdir -p "$root/data"
  chown 999:999 "$root/data"
  chmod 700 "$root/data"
  cat >"$root/bin/postgres-start" <<START
#!/bin/sh
# As the official image does on a first start: a new cluster, then the server on every address.
set -e
if ! [ -s /data/PG_VERSION ]; then
  $pgbin/initdb -D /data -U postgres --auth=trust -E UTF8 --locale=C >/tmp/initdb.log
  echo 'host all all 0.0.0.0/0 trust' >>/data/pg_hba.conf
fi
exec $pgbin/postgres -D /data -c listen_addresses='*' -c unix_socket_directories=/tmp
START
  chmod 755 "$root/bin/postgres-start"
  import "$root" mesh-test/postgres:latest 'EXPOSE 5432' 'USER postgres' 'ENV TZ=UTC' \
    'CMD ["/bin/postgres-start"]'
}

clients() {
  base
  local root=$made
  with_libraries "$root" /usr/bin/redis-cli "$pgbin/psql"
  ln -s "$pgbin/psql" "$root/bin/psql"
  import "$root" mesh-test/pg-redis-clients:latest 'CMD ["/bin/sh"]'
}

dnsmasq() {
  base
  local root=$made
  with_libraries "$root" /usr/sbin/dnsmasq
  import "$root" mesh-test/dnsmasq:latest 'EXPOSE 53/udp' \
    'ENTRYPOINT ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--user=root", "--pid-file=", "--no-resolv", "--no-hosts", "--log-facility=-"]'
}

for image in "${images[@]}"; do "$image"; done
