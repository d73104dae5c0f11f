#compdef relay
# relay completion: generated from relay's command table (relay completion zsh); do not edit
_relay() {
	local -a cands
	local cmd=${words[2]-} sub=${words[3]-}
	if (( CURRENT == 2 )); then
		cands=(
			'audit:initialise, verify, show, archive and report on the audit log'
			'completion:print a shell completion script (bash, zsh or fish)'
			'doctor:preflight checks with fixes'
			'exec:run one allowlisted command locally'
			'notify:send a message or file to the owner'
			'playground:try relay offline, in a local web page that plays the phone'
			'policy:validate a policy file'
			'run:run the bot'
			'sandbox:check what the kernel'\''s sandbox can enforce'
			'serve-ssh:serve a hub'\''s request (the forced command of its ssh key)'
			'token:store, check or delete the bot token'
			'totp:enrol or inspect the TOTP secret'
			'version:print the version, commit and Go version'
		)
		_describe command cands
		return
	fi
	case $cmd in
	audit)
		if (( CURRENT == 3 )); then cands=(init verify show archive report witness)
		else
			case $sub in
			init) cands=(--checkpoint-key --config --dir --force --no-store --origin) ;;
			verify) cands=(--archive --checkpoint --checkpoints --config --dir --host --key --member-key --public-key) ;;
			show) cands=(--command --config --dir --json --outcome --since --type --until -n) ;;
			archive) cands=(--before --config --dir --force-unwitnessed --key --to) ;;
			report) cands=(--archive --checkpoints --config --dir --key --public-key --since --until -o) ;;
			witness) cands=(--address --alert-after --host-key --identity --init --notify-config --notify-socket --port --public-key --store --timeout) ;;
			esac
		fi
		;;
	completion)
		if (( CURRENT == 3 )); then cands=(bash zsh fish)
		else
			case $sub in
			bash) cands=() ;;
			zsh) cands=() ;;
			fish) cands=() ;;
			esac
		fi
		;;
	doctor)
		cands=(--config --offline)
		;;
	exec)
		cands=(--config --host)
		;;
	notify)
		cands=(--config --file --silent --socket)
		;;
	playground)
		cands=(--config --log-format)
		;;
	policy)
		if (( CURRENT == 3 )); then cands=(check)
		else
			case $sub in
			check) cands=() ;;
			esac
		fi
		;;
	run)
		cands=(--api-url --config --log-format --shutdown-grace)
		;;
	sandbox)
		if (( CURRENT == 3 )); then cands=(check)
		else
			case $sub in
			check) cands=(--config) ;;
			esac
		fi
		;;
	serve-ssh)
		cands=(--config --list --peer --witness)
		;;
	token)
		if (( CURRENT == 3 )); then cands=(set status delete)
		else
			case $sub in
			set) cands=(--config --file) ;;
			status) cands=(--config) ;;
			delete) cands=(--config) ;;
			esac
		fi
		;;
	totp)
		if (( CURRENT == 3 )); then cands=(enroll status)
		else
			case $sub in
			enroll) cands=(--config --file --force --light --png) ;;
			status) cands=(--config) ;;
			esac
		fi
		;;
	version)
		cands=()
		;;
	esac
	if [[ $PREFIX == -* || ( ${#cands} -gt 0 && $cands[1] != -* ) ]]; then
		compadd -a cands
	else
		_files
	fi
}
_relay "$@"
