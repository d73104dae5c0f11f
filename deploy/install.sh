#!/usr/bin/env bash
# install.sh: install relay as a hardened systemd service.
#
#   CGO_ENABLED=0 go build -trimpath -o relay ./cmd/relay
#   printf %s "$TOKEN" | sudo deploy/install.sh --owner-id ID --token-stdin ./relay
#   sudo deploy/install.sh --uninstall
#
# Options:
#   --owner-id ID        your numeric Telegram user ID, written into a new config
#   --token-stdin        read the bot token from stdin and encrypt it into
#                        /etc/relay/bot-token.cred with systemd-creds
#   --with-action NAME   install the action unit relay-action-NAME.service
#                        and let the relay user start it (repeatable):
#                        reboot, restart-nginx
#   --uninstall          remove what install.sh installed, except the audit
#                        log in /var/log/relay, which it keeps and names
#   --dry-run            print every step, change nothing
#   --member --hub-key FILE --hub-address ADDR
#                        also make this host a fleet member: the hub's public
#                        key FILE may log in as relay from ADDR (an address,
#                        CIDR or from= pattern) to run relay serve-ssh, and
#                        nothing else (see member_setup below)
#   --witness-key 'ssh-ed25519 AAAA… comment' --witness-address ADDR
#                        also let a witness (relay audit witness, on another
#                        machine) read this host's audit log: that public key
#                        may log in as relay from ADDR to run relay serve-ssh
#                        --witness (the log's signed head and its records),
#                        and nothing else; its own authorized_keys line
#
# What it installs: the binary, the unit, the relay system user and the
# dedicated command user relay-cmd (the identity of every command when relay
# runs as root; under the unit, commands keep the relay user's uid), the
# directories, a config with the built-in read-only policy (never replacing
# an existing one), man pages, shell completions and docs, and, where
# AppArmor restricts user namespaces, a profile that lets relay create them.
# Action units are installed only when asked for; then the polkit rule lets
# the relay user start exactly the installed relay-action-*.service units,
# by name, and nothing else. An action unit of your own, copied to
# /etc/systemd/system/relay-action-NAME.service, joins the rule at the next
# run; when you delete one, run install.sh again so the rule forgets it.
#
# Idempotent: a file is written only when its content, mode or owner
# differs, so a second run prints "nothing to do" and changes nothing. The
# service is not enabled or started: enrol TOTP and create the audit log
# first (the script prints the commands).
#
# DESTDIR=/some/root installs into that tree instead of /. Then no user is
# created, nothing is chowned, the token is not encrypted (systemd-creds binds
# it to this host's key), and systemctl and apparmor_parser are not called:
# that is how the tests and the .deb build run it, without touching the
# machine.
set -euo pipefail
umask 022

prog=install.sh
die() {
	echo "$prog: $*" >&2
	exit 1
}

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
dry=false
member=false
hub_key=""
hub_address=""
witness_key=""
witness_address=""
token_stdin=false
uninstall=false
owner_id=""
bin=""
actions=()
while [ $# -gt 0 ]; do
	case "$1" in
	--dry-run) dry=true ;;
	--token-stdin) token_stdin=true ;;
	--uninstall) uninstall=true ;;
	--owner-id | --with-action)
		[ $# -ge 2 ] || die "$1 needs a value (see --help)"
		case "$1" in
		--owner-id) owner_id="$2" ;;
		--with-action) actions+=("$2") ;;
		esac
		shift
		;;
	--owner-id=*) owner_id="${1#--owner-id=}" ;;
	--with-action=*) actions+=("${1#--with-action=}") ;;
	--member) member=true ;;
	--hub-key | --hub-address)
		[ $# -ge 2 ] || die "$1 needs a value (see --help)"
		if [ "$1" = --hub-key ]; then hub_key="$2"; else hub_address="$2"; fi
		shift
		;;
	--hub-key=*) hub_key="${1#--hub-key=}" ;;
	--witness-key | --witness-address)
		[ $# -ge 2 ] || die "$1 needs a value (see --help)"
		if [ "$1" = --witness-key ]; then witness_key="$2"; else witness_address="$2"; fi
		shift
		;;
	--witness-key=*) witness_key="${1#--witness-key=}" ;;
	--witness-address=*) witness_address="${1#--witness-address=}" ;;
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

# The action units this tree ships, by NAME.
shipped_actions() {
	local f
	for f in "$here"/systemd/relay-action-*.service; do
		f="${f##*/relay-action-}"
		echo "${f%.service}"
	done
}
for a in ${actions[@]+"${actions[@]}"}; do
	if ! shipped_actions | grep -qxF -- "$a"; then
		die "--with-action $a: no such action (have: $(shipped_actions | tr '\n' ' ' | sed 's/ $//'))"
	fi
done

if $uninstall; then
	[ -z "$bin" ] || die "--uninstall takes no binary"
	if [ -n "$owner_id$witness_key$witness_address" ] || $token_stdin || $member || [ ${#actions[@]} != 0 ]; then
		die "--uninstall takes no --owner-id, --token-stdin, --member, --witness-key or --with-action"
	fi
else
	[ -n "$bin" ] || die "usage: install.sh [--dry-run] [--owner-id ID] [--token-stdin] [--with-action NAME]... [--member --hub-key FILE --hub-address ADDR] [--witness-key KEY --witness-address ADDR] RELAY_BINARY (build it with: CGO_ENABLED=0 go build -trimpath -o relay ./cmd/relay), or install.sh --uninstall"
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		die "$bin is not an executable file: build it first with go build -o relay ./cmd/relay"
	fi
	case "$owner_id" in
	*[!0-9]* | 0*) die "--owner-id $owner_id is not a numeric Telegram user ID (message @userinfobot to find yours)" ;;
	esac
fi
if $member; then
	{ [ -n "$hub_key" ] && [ -n "$hub_address" ]; } || die "--member needs --hub-key FILE (the hub's public key) and --hub-address ADDR (where the hub connects from)"
elif [ -n "$hub_key$hub_address" ]; then
	die "--hub-key and --hub-address go with --member"
fi
witness=false
if [ -n "$witness_key$witness_address" ]; then
	{ [ -n "$witness_key" ] && [ -n "$witness_address" ]; } || die "--witness-key KEY (the witness's public key line) and --witness-address ADDR (where the witness connects from) go together"
	witness=true
fi

root="${DESTDIR:-}"
if [ -n "$root" ]; then
	case "$root" in /*) ;; *) die "DESTDIR must be an absolute path, got $root" ;; esac
	root="${root%/}"
elif [ "$(id -u)" != 0 ]; then
	die "run as root (sudo), or set DESTDIR to install into a tree"
fi
system=true
[ -z "$root" ] || system=false

units=/etc/systemd/system
changed=0
# note says what is done, or with --dry-run what would be.
note() {
	changed=1
	if $dry; then echo "would $*"; else echo "$*"; fi
}
# host says a step that only makes sense on a real host: it runs there, is
# announced by a dry run, and with DESTDIR is named as skipped.
host() {
	if $system; then
		note "$*"
	elif $dry; then
		echo "would skip (DESTDIR): $*"
	else
		echo "skip (DESTDIR): $*"
	fi
}
# run runs a command unless this is a dry run or a DESTDIR install.
run() { $dry || ! $system || "$@"; }

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

# touched records what a change touches: a unit means systemd must reload,
# the AppArmor profile that it must be loaded again.
units_changed=false
profile_changed=false
touched() {
	case "$1" in
	"$units"/*) units_changed=true ;;
	/etc/apparmor.d/relay) profile_changed=true ;;
	esac
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
	touched "$2"
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

# remove PATH: delete a file or a whole directory the installer made.
remove() {
	case "$1" in /?*) ;; *) die "internal error: refusing to remove \"$1\"" ;; esac
	[ -e "$root$1" ] || [ -L "$root$1" ] || return 0
	note "remove $1"
	touched "$1"
	$dry || rm -rf -- "$root$1"
}

gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT

# The accounts. Both are system accounts with no shell, no password and no
# home of their own; the comment marks them as the installer's, so that
# --uninstall removes only accounts it made.
relay_comment="relay ChatOps command relay"
cmd_comment="relay sandboxed commands, when relay runs as root"
# The action units in the rule: those installed now plus any already
# there (the owner's own included), each named exactly.
action_re='^relay-action-[a-z0-9]+(-[a-z0-9]+)*\.service$'
action_units() {
	local f n
	{
		for a in ${actions[@]+"${actions[@]}"}; do echo "relay-action-$a.service"; done
		for f in "$root$units"/relay-action-*.service; do
			[ -e "$f" ] || [ -L "$f" ] || continue
			n="${f##*/}"
			if [[ $n =~ $action_re ]]; then
				echo "$n"
			else
				echo "$prog: $units/$n is not named relay-action-NAME.service (a-z 0-9 -): left out of the polkit rule" >&2
			fi
		done
	} | sort -u
}

# polkit_rule writes the rule for the given unit names to stdout.
polkit_rule() {
	local list="" u
	for u in "$@"; do list="$list${list:+, }\"$u\""; done
	sed "s/@UNITS@/$list/" "$here/polkit/50-relay.rules.in"
}

# apparmor_wanted: AppArmor is active and mediates user namespaces (Ubuntu
# 23.10 and later), so relay needs a profile that grants userns. Where it
# does not, the profile is not needed, and older parsers do not know the
# rule. With DESTDIR, the tree's own /sys decides (the tests make one).
apparmor_wanted() {
	[ "$(cat "$root/sys/module/apparmor/parameters/enabled" 2>/dev/null)" = Y ] &&
		[ -e "$root/sys/kernel/security/apparmor/features/namespaces/userns_create" ]
}

# The config install.sh writes when there is none: the built-in read-only
# policy, with the unit's directories, the command user and, for each
# action asked for, its command.
write_config() {
	{
		cat <<EOF
# /etc/relay/relay.yaml, written by deploy/install.sh: relay's built-in
# read-only policy. After an edit: relay policy check /etc/relay/relay.yaml,
# then systemctl reload relay. More in /usr/share/doc/relay/examples.
state_dir: /var/lib/relay
auth:
  owner_id: ${owner_id:-0} # your numeric Telegram user ID (message @userinfobot)
audit:
  dir: /var/log/relay
# Commands run as this account when relay runs as root. Under relay.service
# relay runs as the relay user, and commands keep that uid.
command_user: relay-cmd
secrets:
  # The relay user has no login session, so no OS keyring: the token is the
  # unit's credential, the other secrets 0600 files in state_dir/secrets.
  keyring: false

EOF
		cat "$repo/policy/default.yaml"
		for a in ${actions[@]+"${actions[@]}"}; do
			echo
			cat "$here/actions/$a.yaml"
		done
	} >"$gen/relay.yaml"
}

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
# key_line WHAT ADDRFLAG FORCED FROM "type base64 [comment]" prints one restricted
# authorized_keys line, or dies naming WHAT: a key of a known type in
# base64, a from= that cannot break out of its quotes, a tame comment.
key_line() {
	local what="$1" addrflag="$2" forced="$3" from="$4" type b64 comment
	case "$5" in *$'\n'* | *$'\r'*) die "$what: one key, on one line" ;; esac
	read -r type b64 comment _ <<<"$5" || true
	case "$type" in
	ssh-ed25519 | ecdsa-sha2-nistp256 | ecdsa-sha2-nistp384 | ecdsa-sha2-nistp521 | ssh-rsa) ;;
	*) die "$what: not an ssh public key line (want ssh-ed25519 AAAA… comment; the .pub file, not the private key)" ;;
	esac
	case "$b64" in
	"" | *[!A-Za-z0-9+/=]*) die "$what: the key is not base64" ;;
	esac
	case "$from" in
	"" | *[!A-Za-z0-9.:/*?,!-]*) die "$addrflag $from: want an address, a CIDR or an sshd from= pattern (letters, digits and . : / * ? , ! -)" ;;
	esac
	# The comment is kept at the end of the line, for people; only the
	# characters a comment usually has.
	comment="$(printf '%s' "$comment" | tr -cd 'A-Za-z0-9@._-')"
	printf 'restrict,command="%s",from="%s" %s %s%s\n' "$forced" "$from" "$type" "$b64" "${comment:+ $comment}"
}

member_setup() {
	local keyfile="$hub_key"
	[ -f "$keyfile" ] || die "--hub-key $keyfile is not a file (copy the hub's public key, e.g. /etc/relay/hub_ed25519.pub, here)"
	[ "$(wc -l <"$keyfile")" -le 1 ] || die "--hub-key $keyfile: one key per file"
	hub_line="$(key_line "--hub-key $keyfile" --hub-address "/usr/local/bin/relay serve-ssh --config /etc/relay/relay.yaml" "$hub_address" "$(cat "$keyfile")")"
	if [ ! -e "$root/etc/relay/relay.yaml" ]; then
		put "$repo/policy/examples/member.yaml" /etc/relay/relay.yaml 0640 root:relay
	fi
}

# ssh_setup lets the hub's key (--member) and the witness's (--witness-key)
# in, each on its own line with its own forced command: the hub's runs
# commands and never reads the audit log, the witness's reads the audit log
# and never runs a command (relay serve-ssh refuses each the other's ops).
ssh_setup() {
	local keys witness_line=""
	if $witness; then
		witness_line="$(key_line "--witness-key" --witness-address "/usr/local/bin/relay serve-ssh --witness --config /etc/relay/relay.yaml" "$witness_address" "$witness_key")"
	fi
	keys="$(mktemp)"
	{
		[ -z "$hub_line" ] || echo "$hub_line"
		[ -z "$witness_line" ] || echo "$witness_line"
	} >"$keys"
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
		echo "for the hub's config (hosts:) or the witness's --host-key, this host's key:"
		echo "    \"$(cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_ed25519_key.pub")\""
	fi
	if ! $dry && $system; then
		echo "then, as root: runuser -u relay -- relay audit init --config /etc/relay/relay.yaml   # keep K0 off this host"
		$member && echo "and on the hub: relay doctor --config /etc/relay/relay.yaml"
		$witness && echo "and on the witness: relay audit witness --store DIR --init ... (see relay audit witness -h)"
	fi
	return 0
}
# ---- fleet member: end ------------------------------------------------------


do_install() {
	if $system && ! getent passwd relay >/dev/null; then
		note "create system user relay"
		$dry || useradd --system --user-group --home-dir /var/lib/relay --no-create-home \
			--shell /usr/sbin/nologin --comment "$relay_comment" relay
	fi
	if $system && ! getent passwd relay-cmd >/dev/null; then
		note "create system user relay-cmd"
		$dry || useradd --system --user-group --home-dir /nonexistent --no-create-home \
			--shell /usr/sbin/nologin --comment "$cmd_comment" relay-cmd
	fi

	put "$bin" /usr/local/bin/relay 0755
	put "$here/systemd/relay.service" "$units/relay.service" 0644
	for a in ${actions[@]+"${actions[@]}"}; do
		put "$here/systemd/relay-action-$a.service" "$units/relay-action-$a.service" 0644
	done
	local rule=/etc/polkit-1/rules.d/50-relay.rules
	mapfile -t granted < <(action_units)
	if [ ${#granted[@]} -gt 0 ]; then
		polkit_rule "${granted[@]}" >"$gen/50-relay.rules"
		put "$gen/50-relay.rules" "$rule" 0644
	else
		# Nothing to start: no rule, so the relay user has no grant at all.
		remove "$rule"
	fi
	if apparmor_wanted; then
		put "$here/apparmor/relay" /etc/apparmor.d/relay 0644
		if $profile_changed; then
			host "apparmor_parser -r /etc/apparmor.d/relay"
			run apparmor_parser -r /etc/apparmor.d/relay
		fi
	fi

	# Man pages, completions and reference material. Drop-ins are enabled
	# by copying them into /etc/systemd/system/relay.service.d/.
	put "$repo/docs/man/relay.1" /usr/local/share/man/man1/relay.1 0644
	put "$repo/docs/man/relay.yaml.5" /usr/local/share/man/man5/relay.yaml.5 0644
	put "$here/completion/relay.bash" /usr/local/share/bash-completion/completions/relay 0644
	put "$here/completion/relay.zsh" /usr/local/share/zsh/site-functions/_relay 0644
	put "$here/completion/relay.fish" /usr/local/share/fish/vendor_completions.d/relay.fish 0644
	put "$repo/SECURITY.md" /usr/share/doc/relay/SECURITY.md 0644
	put "$repo/CHANGELOG.md" /usr/share/doc/relay/CHANGELOG.md 0644
	local f
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

	# A member's config is member.yaml: put it in place before the bot's.
	hub_line=""
	if $member; then member_setup; fi
	if $member || $witness; then ssh_setup; fi

	local cfg=/etc/relay/relay.yaml
	if [ ! -e "$root$cfg" ]; then
		write_config
		put "$gen/relay.yaml" "$cfg" 0640 root:relay
		[ -n "$owner_id" ] || echo "edit $cfg: set auth.owner_id to your numeric Telegram user ID"
	else
		[ -z "$owner_id" ] || echo "$cfg exists and is left alone: set auth.owner_id there yourself" >&2
		for a in ${actions[@]+"${actions[@]}"}; do
			echo "$cfg exists and is left alone: add the /$(sed -n 's/^  \([a-z_]*\):$/\1/p' "$here/actions/$a.yaml") command from $here/actions/$a.yaml yourself" >&2
		done
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
				# The token goes from stdin to systemd-creds: never into
				# argv, the environment or a plaintext file.
				local tmp
				tmp="$(mktemp /etc/relay/.bot-token.cred.XXXXXX)"
				systemd-creds encrypt --name=bot-token - "$tmp"
				chmod 0600 "$tmp"
				mv -f "$tmp" /etc/relay/bot-token.cred
			fi
		fi
	fi

	if $units_changed; then
		host "systemctl daemon-reload"
		run systemctl daemon-reload
	fi

	if [ "$changed" = 0 ]; then
		echo "nothing to do"
	elif ! $dry && $system; then
		echo "next, as root:"
		if [ ! -e /etc/relay/bot-token.cred ]; then
			# shellcheck disable=SC2016 # printed for the owner to run
			echo '  printf %s "$TOKEN" | systemd-creds encrypt --name=bot-token - /etc/relay/bot-token.cred'
		fi
		cat <<'EOF'
  runuser -u relay -- relay totp enroll --config /etc/relay/relay.yaml --file
  runuser -u relay -- relay audit init --config /etc/relay/relay.yaml   # keep K0 off this host
  runuser -u relay -- relay doctor --config /etc/relay/relay.yaml --offline
  systemctl enable --now relay.service
EOF
	fi
}

# shipped_unmodified NAME: the installed unit NAME is byte for byte one this
# tree ships, so install.sh put it there and may take it away.
shipped_unmodified() { [ -f "$here/systemd/$1" ] && cmp -s "$here/systemd/$1" "$root$units/$1"; }

do_uninstall() {
	if $system && [ -d /run/systemd/system ] && [ -e "$units/relay.service" ]; then
		note "systemctl disable --now relay.service"
		$dry || systemctl disable --now relay.service
	fi
	remove /usr/local/bin/relay
	remove "$units/relay.service"
	local f n
	for f in "$root$units"/relay-action-*.service; do
		[ -e "$f" ] || continue
		n="${f##*/}"
		if shipped_unmodified "$n"; then
			remove "$units/$n"
		else
			echo "keep $units/$n: not one install.sh ships (remove it yourself)"
		fi
	done
	remove /etc/polkit-1/rules.d/50-relay.rules
	local dropin=/etc/ssh/sshd_config.d/relay-member.conf
	if [ -e "$root$dropin" ]; then
		if cmp -s "$here/ssh/relay-member.conf" "$root$dropin"; then
			remove "$dropin"
			host "systemctl reload ssh"
			run systemctl reload ssh || run systemctl reload sshd || true
		else
			echo "keep $dropin: not the one install.sh ships (remove it yourself)"
		fi
	fi
	if [ -e "$root/etc/apparmor.d/relay" ]; then
		host "apparmor_parser -R /etc/apparmor.d/relay"
		run apparmor_parser -R /etc/apparmor.d/relay || true
		remove /etc/apparmor.d/relay
	fi
	remove /usr/local/share/man/man1/relay.1
	remove /usr/local/share/man/man5/relay.yaml.5
	remove /usr/local/share/bash-completion/completions/relay
	remove /usr/local/share/zsh/site-functions/_relay
	remove /usr/local/share/fish/vendor_completions.d/relay.fish
	remove /usr/share/doc/relay
	# The config, the encrypted token, and the state with the TOTP secret.
	remove /etc/relay
	remove /var/lib/relay
	if $units_changed; then
		host "systemctl daemon-reload"
		run systemctl daemon-reload
	fi

	# The audit log stays. Its files belong to relay, whose uid is freed
	# below and could go to the next system user created: root takes them.
	local log=/var/log/relay
	if [ -d "$root$log" ]; then
		if $system && [ -n "$(find "$log" ! -user root -print -quit)" ]; then
			note "chown -R root:root $log (the audit log is kept)"
			$dry || chown -R root:root "$log"
		fi
		echo "kept the audit log in $log; verify it with: relay audit verify --dir $log --key -   (K0 on stdin)"
	fi
	local u c
	for u in relay-cmd relay; do
		$system || continue
		c="$(getent passwd "$u" | cut -d: -f5)" || continue
		case "$c" in
		"$relay_comment" | "$cmd_comment")
			note "delete system user $u"
			$dry || userdel "$u"
			;;
		*) echo "keep user $u: install.sh did not create it" ;;
		esac
	done
	[ "$changed" = 1 ] || echo "nothing to do"
}

if $uninstall; then
	do_uninstall
else
	do_install
fi
