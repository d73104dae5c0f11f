# relay completion: generated from relay's command table (relay completion bash); do not edit
_relay() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]-} sub=${COMP_WORDS[2]-} words=
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "audit completion doctor exec notify playground policy run sandbox serve-ssh token totp version" -- "$cur"))
		return
	fi
	case $cmd in
	audit)
		if [ "$COMP_CWORD" -eq 2 ]; then words="init verify show archive report witness"
		else
			case $sub in
			init) words="--checkpoint-key --config --dir --force --no-store --origin" ;;
			verify) words="--archive --checkpoint --checkpoints --config --dir --host --key --member-key --public-key" ;;
			show) words="--command --config --dir --json --outcome --since --type --until -n" ;;
			archive) words="--before --config --dir --force-unwitnessed --key --to" ;;
			report) words="--archive --checkpoints --config --dir --key --public-key --since --until -o" ;;
			witness) words="--address --alert-after --host-key --identity --init --notify-config --notify-socket --port --public-key --store --timeout" ;;
			esac
		fi
		;;
	completion)
		if [ "$COMP_CWORD" -eq 2 ]; then words="bash zsh fish"
		else
			case $sub in
			bash) words="" ;;
			zsh) words="" ;;
			fish) words="" ;;
			esac
		fi
		;;
	doctor)
		words="--config --offline"
		;;
	exec)
		words="--config --host"
		;;
	notify)
		words="--config --file --silent --socket"
		;;
	playground)
		words="--config --log-format"
		;;
	policy)
		if [ "$COMP_CWORD" -eq 2 ]; then words="check"
		else
			case $sub in
			check) words="" ;;
			esac
		fi
		;;
	run)
		words="--api-url --config --log-format --shutdown-grace"
		;;
	sandbox)
		if [ "$COMP_CWORD" -eq 2 ]; then words="check"
		else
			case $sub in
			check) words="--config" ;;
			esac
		fi
		;;
	serve-ssh)
		words="--config --list --peer --witness"
		;;
	token)
		if [ "$COMP_CWORD" -eq 2 ]; then words="set status delete"
		else
			case $sub in
			set) words="--config --file" ;;
			status) words="--config" ;;
			delete) words="--config" ;;
			esac
		fi
		;;
	totp)
		if [ "$COMP_CWORD" -eq 2 ]; then words="enroll status"
		else
			case $sub in
			enroll) words="--config --file --force --light --png" ;;
			status) words="--config" ;;
			esac
		fi
		;;
	version)
		words=""
		;;
	esac
	if [[ $cur == -* || ( -n $words && $words != -* ) ]]; then
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _relay relay
