// Package policy is relay's public policy schema: loading the YAML config
// strictly, validating every command at load time, and binding untrusted
// chat arguments to an allowlisted argv template.
//
// It must never run anything and never consult a shell. A *Config returned
// by Load has been validated completely: code that holds one never meets a
// problem the loader could have seen.
//
// # The file
//
//	state_dir: /var/lib/relay
//	telegram:
//	  mode: polling              # or webhook, with telegram.webhook.{listen,url}
//	  token_file: /etc/relay/token
//	auth:
//	  owner_id: 123456789        # required
//	audit:
//	  dir: /var/log/relay
//	limits: {max_concurrent: 4, default_timeout: 30s, max_timeout: 10m, default_max_output: 16MiB, max_output: 1GiB}
//	commands:                    # keyed by command name, kept in file order
//	  restart:
//	    description: restart a service
//	    argv: [/usr/bin/systemctl, restart, "{unit}.service"]
//	    params:
//	      - {name: unit, type: enum, values: [nginx, caddy]}
//	    timeout: 20s
//	    confirm: true
//	  logs:
//	    argv: [/usr/bin/tail, -n, "{lines}", "{file}"]
//	    params:
//	      - {name: file, type: path, root: /var/log}
//	      - {name: lines, type: int, min: 1, max: 1000, optional: true, default: 50}
//	    sandbox: {read: [/var/log]}
//
// Decoding is strict: an unknown key, a wrong type, a duplicate key or
// command, a YAML alias or a second document is an error. Load collects
// every error in the file into an *ErrorList; each names file:line:col and,
// where one is plausible, a hint ("did you mean \"timeout\"?"). Durations
// are Go duration strings ("10s"); sizes are integers (bytes) or strings
// with a unit ("64MiB", "1MB"; see ParseSize). Defaults are documented on
// the fields in types.go; state_dir and audit.dir default per DefaultPaths.
// A command's workdir defaults to "/" and its description to
// "run <program>". Command names are 1-32 characters of a-z, 0-9 and _,
// and may not be one of Reserved.
//
// Load checks the host too: argv[0] is an absolute path to an existing,
// executable regular file; workdir, path roots and sandbox.write are
// existing directories; sandbox.read paths exist; the TLS files exist.
//
// # Parameters
//
//   - enum: values lists the allowed strings; the argument must equal one.
//     With fold_case: true it may differ in case (strings.EqualFold), and
//     aliases ({on: [an, ein]}) add other words per value. Either way the
//     bound value is the value itself. The loader refuses values equal
//     under folding, aliases of keys that are not values, and an alias
//     equal to a value or to another alias (with fold_case, in any case).
//   - int: min and max (both required, inclusive); the argument is decimal
//     digits with an optional leading '-', and argv gets its canonical form
//     ("007" becomes "7").
//   - string: pattern (an RE2 regex written anchored, ^...$) and max_len
//     (1-4096 bytes) are required. Matching is always of the whole value,
//     as if written \A(?:pattern)\z, so "^a|b$" cannot match a substring.
//   - path: root is required. A relative argument is taken relative to the
//     root. The path is resolved with every symlink followed, must exist,
//     and must be the root or inside it after the root's own symlinks are
//     resolved; argv gets the resolved absolute path.
//
// A parameter may be optional (optional: true), in which case it needs a
// default, which must satisfy its type (checked at load). Optional
// parameters come after required ones. Every declared parameter must appear
// in argv.
//
// A parameter may declare choices, the buttons of its picker, each a value
// or {value, label}; at most MaxChoices, each bound at load as if typed.
// Command.Next says what a picker offers after the words given so far (see
// its documentation); the final words bind with Bind, exactly as typed.
//
// # Formats
//
// A command may declare format: {jq: EXPR, input: json|text, table: true|[cols]}:
// how its output is shown. The expression is checked and compiled at load
// by internal/render, which bounds every evaluation (see that package);
// Command.Renderer returns the compiled program.
//
// # Substitution rules
//
// Arguments bind by position, in declared order (see SplitArgs for how a
// chat message is split into arguments; "relay exec" passes shell words
// unchanged). Too few or too many arguments give a *UsageError carrying the
// usage line built from the schema. A value that fails gives an *ArgError.
// Both are safe to show in the chat: they quote at most a short, escaped
// prefix of a value.
//
//  1. The program is fixed: argv[0] never contains a placeholder.
//  2. A placeholder "{name}" expands inside one argv element; one argument
//     never becomes two argv elements, whatever it contains. "{{" writes a
//     literal "{"; other braces are literal, so JSON needs no escaping.
//  3. Every value is refused if it is longer than 4096 bytes (or a string's
//     max_len), is not valid UTF-8, or contains a control character (NUL,
//     CR, LF, tab, ESC, DEL, C1), U+2028/U+2029, or a bidirectional
//     formatting character (U+061C, U+200E, U+200F, U+202A-U+202E,
//     U+2066-U+2069).
//  4. A value beginning with '-' is refused unless the parameter says
//     allow_dash: true. An enum value or an int min that would allow one
//     needs allow_dash as well, so the policy states it.
//  5. A placeholder that is not a whole argv element (inside a URL, a
//     key=value option, a JSON body) is allowed for enum and int
//     parameters, and for a string parameter only when its pattern can
//     match nothing but the characters of EmbedSafe (A-Z a-z 0-9 . _ -).
//     That is proven at load from the regex's syntax tree: every literal
//     and character class it contains must lie within that set. Such a
//     value must also not contain "..". A path parameter is never embedded.
//  6. The environment starts empty: PATH and LANG are fixed (FixedPath,
//     FixedLang), and the command's env map is added (it may override
//     them). Parameters never reach the environment.
package policy

// # Fleet: hub and member
//
// A hub's file may name the members it reaches over OpenSSH:
//
//	fleet:                       # all optional
//	  parallel: 4                # hosts at once per fan-out
//	  max_calls: 16              # remote calls at once; more are refused
//	  timeout: 1m                # a call's default deadline
//	  max_output: 16MiB          # a call's default output cap
//	  connect_timeout: 10s       # ssh ConnectTimeout
//	  alive_interval: 15s        # ssh ServerAliveInterval
//	  alive_count: 3             # ssh ServerAliveCountMax
//	  persist: 60s               # ssh ControlPersist; 0s: no reuse
//	  ssh: /usr/bin/ssh
//	hosts:
//	  nas:
//	    address: relay@nas.lan   # required: the member account and host
//	    port: 22
//	    host_key: ssh-ed25519 AAAA…   # or known_hosts: FILE; one is required
//	    identity: /etc/relay/hub_ed25519   # required; 0600
//	    agent: /run/relay/agent.sock       # optional: identity is then the .pub
//	    timeout: 30s             # default fleet.timeout
//	    max_output: 1MiB         # default fleet.max_output
//	groups:
//	  web: [web1, web2]
//
// Host and group names are 1-32 of a-z, 0-9, - and _, share one namespace,
// and "all" is reserved for every host. host_key takes a public key line
// (the member's /etc/ssh/ssh_host_ed25519_key.pub) or a known_hosts line
// (its host pattern is dropped: the key is pinned to this entry); there is
// no trust on first use. The address's user and host are checked so that
// neither can be read by ssh as an option.
//
// A member's file says member: (a mapping, possibly empty: {}); auth.owner_id
// may then be left out. member.hub_keys optionally lists the SHA256 key
// fingerprints serve-ssh accepts. A command with hub: false is refused to
// a hub and not offered to it.
