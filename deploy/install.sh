#!/usr/bin/env bash
# install.sh: install relay as a hardened systemd service.
#
#   CGO_ENABLED=0 go build -trimpath -o relay ./cmd/relay
#   sudo deploy/install.sh [--owner-id ID] ./relay
#   printf %s "$TOKEN" | sudo deploy/install.sh --token-stdin ./relay
#
# Options:
#   --owner-id ID   your numeric Telegram user ID, written into a new config
#   --token-stdin   read the bot token from stdin and encrypt it into
#                   /etc/relay/bot-token.cred with systemd-creds
#   --dry-run       print what would change and change nothing
#   --member --hub-key FILE --hub-address ADDR
#                   also make this host a fleet member: the hub's public key
#                   FILE may log in as relay from ADDR (an address, CIDR or
#                   from= pattern) to run relay serve-ssh, and nothing else
#                   (see member_setup below)
#
# Idempotent: a file is written only when its content, mode or owner
# differs, so a second run prints "nothing to do" and changes nothing. An
# existing /etc/relay/relay.yaml is never overwritten. The service is not
# enabled or started: enrol TOTP and create the audit log first (the script
# prints the commands).
#
# DESTDIR=/some/root installs into that tree instead of /. Then no user is
# created, nothing is chowned, the token is not encrypted (systemd-creds binds
# it to this host's key) and systemctl is not called: that is how the tests
# run it, as root, without touching the machine.
set -euo pipefail
umask 022

prog=install.sh
die() { echo "$prog: $*" >&2; exit 1; }

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
dry=false
member=false
hub_key=""
hub_address=""
token_stdin=false
owner_id=""
bin=""
while [ $# -gt 0 ]; do
	case "$1" in
	--dry-run) dry=true ;;
	--token-stdin) token_stdin=true ;;
	--owner-id)
		[ $# -ge 2 ] || die "--owner-id needs a value: your numeric Telegram user ID"
		owner_id="$2"
		shift
		;;
	--owner-id=*) owner_id="${1#--owner-id=}" ;;
	--member) member=true ;;
	--hub-key | --hub-address)
		[ $# -ge 2 ] || die "$1 needs a value (see --help)"
		if [ "$1" = --hub-key ]; then hub_key="$2"; else hub_address="$2"; fi
		shift
		;;
	--hub-key=*) hub_key="${1#--hub-key=}" ;;
	--hub-address=*) hub_address="${1#--hub-address=}" ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[ -z "$bin" ] || die "one binary only, got $bin and $1"
		bin="$1"
		;;
	esac
	shift
done
if $member; then
	[ -n "$hub_key" ] && [ -n "$hub_address" ] || die "--member needs --hub-key FILE (the hub's public key) and --hub-address ADDR (where the hub connects from)"
elif [ -n "$hub_key$hub_address" ]; then
	die "--hub-key and --hub-address go with --member"
fi
[ -n "$bin" ] || die "usage: install.sh [--dry-run] [--owner-id ID] [--token-stdin] [--member --hub-key FILE --hub-address ADDR] RELAY_BINARY (build it with: CGO_ENABLED=0 go build -trimpath -o relay ./cmd/relay)"
[ -f "$bin" ] && [ -x "$bin" ] || die "$bin is not an executable file: build it first with go build -o relay ./cmd/relay"
case "$owner_id" in
*[!0-9]* | 0*) die "--owner-id $owner_id is not a numeric Telegram user ID (message @userinfobot to find yours)" ;;
esac

root="${DESTDIR:-}"
if [ -n "$root" ]; then
	case "$root" in /*) ;; *) die "DESTDIR must be an absolute path, got $root" ;; esac
	root="${root%/}"
elif [ "$(id -u)" != 0 ]; then
	die "run as root (sudo), or set DESTDIR to install into a tree"
fi
system=true
[ -z "$root" ] || system=false

changed=0
note() {
	changed=1
	if $dry; then echo "would $*"; else echo "$*"; fi
}

# ownerof PATH: "user:group" of PATH.
ownerof() { stat -c %U:%G "$1"; }

# dir PATH MODE [OWNER]: create PATH or fix its mode and owner.
dir() {
	local dst="$root$1" mode="$2" owner="${3:-}"
	$system || owner=""
	if [ ! -d "$dst" ]; then
		note "create $1 (mode $mode${owner:+, $owner})"
		$dry && return
		mkdir -p "$dst"
		chmod "$mode" "$dst"
		[ -z "$owner" ] || chown "$owner" "$dst"
		return
	fi
	if [ "$(stat -c %a "$dst")" != "${mode#0}" ]; then
		note "chmod $mode $1"
		$dry || chmod "$mode" "$dst"
	fi
	if [ -n "$owner" ] && [ "$(ownerof "$dst")" != "$owner" ]; then
		note "chown $owner $1"
		$dry || chown "$owner" "$dst"
	fi
}

# put SRC DST MODE [OWNER]: install SRC as DST when content, mode or owner
# differ. Parent directories that do not exist are created 0755.
put() {
	local src="$1" dst="$root$2" mode="$3" owner="${4:-root:root}"
	$system || owner=""
	if [ -f "$dst" ] && cmp -s "$src" "$dst" &&
		[ "$(stat -c %a "$dst")" = "${mode#0}" ] &&
		{ [ -z "$owner" ] || [ "$(ownerof "$dst")" = "$owner" ]; }; then
		return
	fi
	note "install $2 (mode $mode${owner:+, $owner})"
	$dry && return
	mkdir -p "$(dirname "$dst")"
	# Write beside the target and rename, so a running relay or a reader
	# never sees a half-written file.
	local tmp
	tmp="$(mktemp "$dst.XXXXXX")"
	cat "$src" >"$tmp"
	chmod "$mode" "$tmp"
	[ -z "$owner" ] || chown "$owner" "$tmp"
	mv -f "$tmp" "$dst"
}

# The user: a system account with no shell and no password, whose home is
# the state directory. It owns nothing outside /var/lib/relay and
# /var/log/relay.
if $system && ! getent passwd relay >/dev/null; then
	note "create system user relay"
	$dry || useradd --system --user-group --home-dir /var/lib/relay --no-create-home \
		--shell /usr/sbin/nologin --comment "relay ChatOps command relay" relay
fi

# unitsum: a checksum of the installed units, to reload systemd only when
# they changed.
unitsum() {
	{ cat "$root"/etc/systemd/system/relay.service \
		"$root"/etc/systemd/system/relay-action-*.service 2>/dev/null || true; } | cksum
}
units_before="$(unitsum)"

put "$bin" /usr/local/bin/relay 0755
put "$here/systemd/relay.service" /etc/systemd/system/relay.service 0644
put "$here/systemd/relay-action-restart-nginx.service" /etc/systemd/system/relay-action-restart-nginx.service 0644
put "$here/systemd/relay-action-reboot.service" /etc/systemd/system/relay-action-reboot.service 0644
put "$here/polkit/50-relay.rules" /etc/polkit-1/rules.d/50-relay.rules 0644

# Reference material, not active: drop-ins are enabled by copying them into
# /etc/systemd/system/relay.service.d/.
put "$repo/SECURITY.md" /usr/share/doc/relay/SECURITY.md 0644
for f in "$here"/systemd/drop-ins/*.conf; do
	put "$f" "/usr/share/doc/relay/drop-ins/$(basename "$f")" 0644
done
for f in "$repo"/policy/examples/*.yaml; do
	put "$f" "/usr/share/doc/relay/examples/$(basename "$f")" 0644
done

# /etc/relay: root owns it, relay may read it, nobody else may enter.
dir /etc/relay 0750 root:relay
# State and audit directories exist before the first start so that
# "relay totp enroll" and "relay audit init" can run as relay; systemd
# enforces the same modes (StateDirectoryMode=, LogsDirectoryMode=).
dir /var/lib/relay 0700 relay:relay
dir /var/log/relay 0700 relay:relay

# ---- fleet member: begin (deploy/install.sh --member) ----------------------
# member_setup makes this host a fleet member. The hub reaches it over ssh
# as the relay account (the one that owns /etc/relay, the state and the audit
# log, so that serve-ssh and a relay daemon here share one log), with one
# key that may only run relay serve-ssh, only from the hub's address:
#
#   /etc/relay/authorized_keys            root:relay 0640, one line:
#     restrict,command="/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml",from="ADDR" KEY
#   /etc/ssh/sshd_config.d/relay-member.conf
#     Match User relay: that file only, public keys only, no forwarding,
#     no tty, no ~/.ssh/rc, ExposeAuthInfo (the key's fingerprint is audited)
#   /etc/relay/relay.yaml                 policy/examples/member.yaml, if none
#
# The keys file belongs to root, so nothing running as relay can add a key.
# sshd runs a forced command through the account's shell, so relay's shell
# becomes /bin/sh, and its password field "*" (no password, not "locked",
# which sshd without PAM refuses for keys too).
member_setup() {
	local keyfile="$hub_key" from="$hub_address"
	[ -f "$keyfile" ] || die "--hub-key $keyfile is not a file (copy the hub's public key, e.g. /etc/relay/hub_ed25519.pub, here)"
	local type b64 comment extra
	read -r type b64 comment extra <"$keyfile" || true
	case "$type" in
	ssh-ed25519 | ecdsa-sha2-nistp256 | ecdsa-sha2-nistp384 | ecdsa-sha2-nistp521 | ssh-rsa) ;;
	*) die "--hub-key $keyfile: not an ssh public key line (want ssh-ed25519 AAAA… comment; the .pub file, not the private key)" ;;
	esac
	case "$b64" in
	"" | *[!A-Za-z0-9+/=]*) die "--hub-key $keyfile: the key is not base64" ;;
	esac
	[ "$(wc -l <"$keyfile")" -le 1 ] || die "--hub-key $keyfile: one key per file"
	case "$from" in
	"" | *[!A-Za-z0-9.:/*?,!-]*) die "--hub-address $from: want an address, a CIDR or an sshd from= pattern (letters, digits and . : / * ? , ! -)" ;;
	esac
	# The comment is kept at the end of the line, for people; only the
	# characters a comment usually has.
	comment="$(printf '%s' "$comment" | tr -cd 'A-Za-z0-9@._-')"

	if [ ! -e "$root/etc/relay/relay.yaml" ]; then
		put "$repo/policy/examples/member.yaml" /etc/relay/relay.yaml 0640 root:relay
	fi
	local keys
	keys="$(mktemp)"
	printf 'restrict,command="/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml",from="%s" %s %s%s\n' \
		"$from" "$type" "$b64" "${comment:+ $comment}" >"$keys"
	put "$keys" /etc/relay/authorized_keys 0640 root:relay
	rm -f "$keys"
	local dropin=/etc/ssh/sshd_config.d/relay-member.conf before=""
	[ -f "$root$dropin" ] && before="$(cksum <"$root$dropin")"
	put "$here/ssh/relay-member.conf" "$dropin" 0644

	if $system; then
		if [ "$(getent passwd relay | cut -d: -f7)" != /bin/sh ]; then
			note "set relay's shell to /bin/sh (sshd runs the forced command through it)"
			$dry || usermod --shell /bin/sh relay
		fi
		if [ "$(getent shadow relay | cut -d: -f2)" != '*' ]; then
			note "set relay's password field to * (no password; keys only)"
			$dry || usermod --password '*' relay
		fi
		if ! $dry && [ "$before" != "$(cksum <"$root$dropin")" ]; then
			sshd -t || die "sshd -t refuses the configuration with $dropin; fix it before reloading ssh"
			note "systemctl reload ssh"
			systemctl reload ssh || systemctl reload sshd || echo "reload sshd yourself" >&2
		fi
	fi
	if ! $dry && [ -r "$root/etc/ssh/ssh_host_ed25519_key.pub" ]; then
		echo "for the hub's config (hosts:), this host's key:"
		echo "    host_key: \"$(cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_ed25519_key.pub")\""
	fi
	if ! $dry && $system; then
		echo "then, as root: runuser -u relay -- relay audit init --config /etc/relay/relay.yaml   # keep K0 off this host"
		echo "and on the hub: relay doctor --config /etc/relay/relay.yaml"
	fi
}
# ---- fleet member: end ------------------------------------------------------

# A member's config is member.yaml: put it in place before the bot's.
if $member; then member_setup; fi

cfg=/etc/relay/relay.yaml
if [ ! -e "$root$cfg" ]; then
	src="$repo/policy/examples/homelab.yaml"
	if [ -n "$owner_id" ]; then
		gen="$(mktemp)"
		trap 'rm -f "$gen"' EXIT
		sed "s/^  owner_id: 123456789 /  owner_id: $owner_id /" "$src" >"$gen"
		grep -q "^  owner_id: $owner_id " "$gen" || die "could not set owner_id in $src"
		src="$gen"
	fi
	put "$src" "$cfg" 0640 root:relay
	[ -n "$owner_id" ] || echo "edit $cfg: set auth.owner_id to your numeric Telegram user ID"
elif [ -n "$owner_id" ]; then
	echo "$cfg exists and is left alone: set auth.owner_id there yourself" >&2
fi

if $token_stdin; then
	if ! $system; then
		echo "DESTDIR is set: not encrypting the token (a credential is bound to this host's key)" >&2
		cat >/dev/null
	else
		note "encrypt the token from stdin into /etc/relay/bot-token.cred"
		if $dry; then
			cat >/dev/null
		else
			# The token goes from stdin to systemd-creds: never into argv,
			# the environment or a plaintext file.
			tmp="$(mktemp /etc/relay/.bot-token.cred.XXXXXX)"
			systemd-creds encrypt --name=bot-token - "$tmp"
			chmod 0600 "$tmp"
			mv -f "$tmp" /etc/relay/bot-token.cred
		fi
	fi
fi

if $system && [ "$units_before" != "$(unitsum)" ]; then
	note "systemctl daemon-reload"
	$dry || systemctl daemon-reload
fi

if [ "$changed" = 0 ]; then
	echo "nothing to do"
elif ! $dry && $system; then
	echo "next, as root:"
	if [ ! -e /etc/relay/bot-token.cred ]; then
		echo '  printf %s "$TOKEN" | systemd-creds encrypt --name=bot-token - /etc/relay/bot-token.cred'
	fi
	cat <<'EOF'
  runuser -u relay -- relay totp enroll --config /etc/relay/relay.yaml --file
  runuser -u relay -- relay audit init --config /etc/relay/relay.yaml   # keep K0 off this host
  runuser -u relay -- relay doctor --config /etc/relay/relay.yaml --offline
  systemctl enable --now relay.service
EOF
fi
