#!/usr/bin/env bash
# Installs relay as a hardened systemd service. Idempotent: a second run
# changes nothing. Usage:
#
#   go build -o relay ./cmd/relay
#   sudo deploy/install.sh ./relay            # then: relay totp enroll, relay audit init
#   printf %s "$TOKEN" | sudo deploy/install.sh ./relay --token-stdin
#
# DESTDIR=/some/root installs into a tree instead (no user is created and
# systemctl is not called), which is how the tests run it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: install.sh RELAY_BINARY [--token-stdin]}"
token_stdin=false
[ "${2:-}" = "--token-stdin" ] && token_stdin=true
root="${DESTDIR:-}"

changed=0
# put SRC DST MODE: install only when the content or mode differs.
put() {
	local src="$1" dst="$root$2" mode="$3"
	mkdir -p "$(dirname "$dst")"
	if [ -f "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c %a "$dst")" = "$mode" ]; then
		return
	fi
	install -m "$mode" "$src" "$dst"
	echo "installed $2"
	changed=1
}

if [ -z "$root" ] && ! getent passwd relay >/dev/null; then
	useradd --system --home-dir /var/lib/relay --shell /usr/sbin/nologin relay
	echo "created user relay"
	changed=1
fi

put "$bin" /usr/local/bin/relay 755
put "$here/systemd/relay.service" /etc/systemd/system/relay.service 644
put "$here/polkit/50-relay.rules" /etc/polkit-1/rules.d/50-relay.rules 644
put "$here/systemd/relay-action-restart-nginx.service" /etc/systemd/system/relay-action-restart-nginx.service 644
mkdir -p "$root/etc/relay"
chmod 750 "$root/etc/relay"
if [ ! -e "$root/etc/relay/relay.yaml" ]; then
	put "$here/../policy/examples/homelab.yaml" /etc/relay/relay.yaml 640
	echo "edit /etc/relay/relay.yaml: set auth.owner_id"
fi
if [ -z "$root" ]; then
	chgrp relay /etc/relay /etc/relay/relay.yaml
fi
if $token_stdin; then
	if [ -n "$root" ]; then
		echo "DESTDIR set: not encrypting the token" >&2
	else
		systemd-creds encrypt --name=bot-token - /etc/relay/bot-token.cred
		chmod 600 /etc/relay/bot-token.cred
		echo "encrypted the token into /etc/relay/bot-token.cred"
		changed=1
	fi
fi
if [ -z "$root" ] && [ "$changed" = 1 ]; then
	systemctl daemon-reload
fi
[ "$changed" = 1 ] || echo "nothing to do"
