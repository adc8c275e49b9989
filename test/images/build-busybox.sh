#!/usr/bin/env bash
# Builds the test image mesh-test/busybox:latest from this machine's static busybox with
# `docker import`: no registry is ever contacted. busybox httpd serves /www, CGI from /www/cgi-bin.
set -euo pipefail
image=${1:-mesh-test/busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}

if ! [ -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "build-busybox: $busybox is missing or not static; install Debian's busybox-static" >&2
  exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,www/cgi-bin}
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
echo 'mesh test page' >"$root/www/index.html"
cat >"$root/www/cgi-bin/whoami" <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "host=$(hostname)"
echo "client=$REMOTE_ADDR"
CGI
chmod 755 "$root/www/cgi-bin/whoami"

tar -C "$root" -c . | docker import \
  --change 'CMD ["/bin/sh"]' \
  --change 'LABEL org.opencontainers.image.title=mesh-test-busybox' \
  - "$image" >/dev/null
echo "built $image"
