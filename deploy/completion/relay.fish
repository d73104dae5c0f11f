# relay completion: generated from relay's command table (relay completion fish); do not edit
complete -c relay -f
set -l relay_commands audit completion doctor exec notify playground policy run sandbox serve-ssh token totp version
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a audit -d 'initialise, verify, show, archive and report on the audit log'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a completion -d 'print a shell completion script (bash, zsh or fish)'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a doctor -d 'preflight checks with fixes'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a exec -d 'run one allowlisted command locally'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a notify -d 'send a message or file to the owner'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a playground -d 'try relay offline, in a local web page that plays the phone'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a policy -d 'validate a policy file'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a run -d 'run the bot'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a sandbox -d 'check what the kernel'\''s sandbox can enforce'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a serve-ssh -d 'serve a hub'\''s request (the forced command of its ssh key)'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a token -d 'store, check or delete the bot token'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a totp -d 'enrol or inspect the TOTP secret'
complete -c relay -n "not __fish_seen_subcommand_from $relay_commands" -a version -d 'print the version, commit and Go version'
complete -c relay -n "__fish_seen_subcommand_from audit; and not __fish_seen_subcommand_from init verify show archive report witness" -a 'init verify show archive report witness'
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from init" -l checkpoint-key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from init" -l config -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from init" -l dir -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from init" -l force -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from init" -l no-store -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from init" -l origin -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l archive -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l checkpoint -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l checkpoints -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l config -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l dir -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l host -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l member-key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from verify" -l public-key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l command -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l config -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l dir -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l json -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l outcome -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l since -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l type -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -l until -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from show" -s n -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from archive" -l before -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from archive" -l config -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from archive" -l dir -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from archive" -l force-unwitnessed -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from archive" -l key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from archive" -l to -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l archive -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l checkpoints -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l config -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l dir -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l public-key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l since -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -l until -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from report" -s o -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l address -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l alert-after -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l host-key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l identity -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l init -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l notify-config -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l notify-socket -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l port -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l public-key -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l store -F
complete -c relay -n "__fish_seen_subcommand_from audit; and __fish_seen_subcommand_from witness" -l timeout -F
complete -c relay -n "__fish_seen_subcommand_from completion; and not __fish_seen_subcommand_from bash zsh fish" -a 'bash zsh fish'
complete -c relay -n "__fish_seen_subcommand_from doctor" -l config -F
complete -c relay -n "__fish_seen_subcommand_from doctor" -l offline -F
complete -c relay -n "__fish_seen_subcommand_from exec" -l config -F
complete -c relay -n "__fish_seen_subcommand_from exec" -l host -F
complete -c relay -n "__fish_seen_subcommand_from notify" -l config -F
complete -c relay -n "__fish_seen_subcommand_from notify" -l file -F
complete -c relay -n "__fish_seen_subcommand_from notify" -l silent -F
complete -c relay -n "__fish_seen_subcommand_from notify" -l socket -F
complete -c relay -n "__fish_seen_subcommand_from playground" -l config -F
complete -c relay -n "__fish_seen_subcommand_from playground" -l log-format -F
complete -c relay -n "__fish_seen_subcommand_from policy; and not __fish_seen_subcommand_from check" -a 'check'
complete -c relay -n "__fish_seen_subcommand_from run" -l api-url -F
complete -c relay -n "__fish_seen_subcommand_from run" -l config -F
complete -c relay -n "__fish_seen_subcommand_from run" -l log-format -F
complete -c relay -n "__fish_seen_subcommand_from run" -l shutdown-grace -F
complete -c relay -n "__fish_seen_subcommand_from sandbox; and not __fish_seen_subcommand_from check" -a 'check'
complete -c relay -n "__fish_seen_subcommand_from sandbox; and __fish_seen_subcommand_from check" -l config -F
complete -c relay -n "__fish_seen_subcommand_from serve-ssh" -l config -F
complete -c relay -n "__fish_seen_subcommand_from serve-ssh" -l list -F
complete -c relay -n "__fish_seen_subcommand_from serve-ssh" -l peer -F
complete -c relay -n "__fish_seen_subcommand_from serve-ssh" -l witness -F
complete -c relay -n "__fish_seen_subcommand_from token; and not __fish_seen_subcommand_from set status delete" -a 'set status delete'
complete -c relay -n "__fish_seen_subcommand_from token; and __fish_seen_subcommand_from set" -l config -F
complete -c relay -n "__fish_seen_subcommand_from token; and __fish_seen_subcommand_from set" -l file -F
complete -c relay -n "__fish_seen_subcommand_from token; and __fish_seen_subcommand_from status" -l config -F
complete -c relay -n "__fish_seen_subcommand_from token; and __fish_seen_subcommand_from delete" -l config -F
complete -c relay -n "__fish_seen_subcommand_from totp; and not __fish_seen_subcommand_from enroll status" -a 'enroll status'
complete -c relay -n "__fish_seen_subcommand_from totp; and __fish_seen_subcommand_from enroll" -l config -F
complete -c relay -n "__fish_seen_subcommand_from totp; and __fish_seen_subcommand_from enroll" -l file -F
complete -c relay -n "__fish_seen_subcommand_from totp; and __fish_seen_subcommand_from enroll" -l force -F
complete -c relay -n "__fish_seen_subcommand_from totp; and __fish_seen_subcommand_from enroll" -l light -F
complete -c relay -n "__fish_seen_subcommand_from totp; and __fish_seen_subcommand_from enroll" -l png -F
complete -c relay -n "__fish_seen_subcommand_from totp; and __fish_seen_subcommand_from status" -l config -F
