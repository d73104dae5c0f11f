package policy

// Builtin is a chat command the relay answers itself. Builtins is the one
// list of them: the daemon's dispatch, /help, the phone's menu and the
// names a policy command may not take all come from it (a daemon test
// ties the dispatch to it).
type Builtin struct {
	Name string
	// Args is how /help shows the arguments ("CODE", "[N]"); "" for none.
	Args        string
	Description string
	// Session: the command needs a live session. The panic button and
	// the way to get a session must work without one.
	Session bool
	// Hidden: an alias, answered but not listed in /help or the menu.
	Hidden bool
	// Fleet: the command reaches other hosts; listed only when the config
	// names some (hosts:).
	Fleet bool
}

// Listed reports whether /help and the menu show b for c.
func (b Builtin) Listed(c *Config) bool {
	return !b.Hidden && (!b.Fleet || len(c.Hosts) > 0)
}

// Usage is the command as /help shows it: "/kill JOB".
func (b Builtin) Usage() string {
	if b.Args == "" {
		return "/" + b.Name
	}
	return "/" + b.Name + " " + b.Args
}

// Builtins are the chat commands the relay answers itself, in the order
// /help and the menu list them.
var Builtins = []Builtin{
	{Name: "login", Args: "CODE", Description: "log in with a TOTP or recovery code"},
	{Name: "logout", Description: "end the session"},
	{Name: "lock", Description: "panic button: end the session, kill jobs"},
	{Name: "status", Description: "session, jobs, lockout and audit health"},
	{Name: "ps", Description: "list running jobs", Session: true},
	{Name: "kill", Args: "JOB", Description: "kill a running job", Session: true},
	{Name: "audit", Args: "[N]", Description: "show the last audit records", Session: true},
	{Name: "cancel", Description: "void the pending Run buttons"},
	{Name: "on", Args: "TARGET COMMAND [ARGS]", Description: "run a command on a host or group", Session: true, Fleet: true},
	{Name: "hosts", Description: "list the hosts and groups", Session: true, Fleet: true},
	{Name: "help", Description: "list the commands"},
	// Telegram sends /start when the owner first opens the bot.
	{Name: "start", Description: "list the commands", Hidden: true},
}

// Reserved are the command names the relay itself answers in the chat,
// hidden aliases included; a policy command with one of these names would
// be unreachable.
var Reserved = builtinNames()

func builtinNames() []string {
	names := make([]string, len(Builtins))
	for i, b := range Builtins {
		names[i] = b.Name
	}
	return names
}

// LookupBuiltin returns the built-in command called name, or nil.
func LookupBuiltin(name string) *Builtin {
	for i := range Builtins {
		if Builtins[i].Name == name {
			return &Builtins[i]
		}
	}
	return nil
}

// MaxMenu is the most commands Telegram shows in a bot's menu; the
// daemon's test holds it equal to the transport's limit.
const MaxMenu = 100

// MenuEntry is one command of the phone's menu.
type MenuEntry struct {
	Name        string
	Description string
}

// Menu is the phone's command menu for c: the policy's commands in file
// order, then the listed built-ins, cut to what Telegram shows. The
// built-ins always fit; omitted are the policy commands left out, which
// still run when typed and are listed by /help.
func (c *Config) Menu() (menu []MenuEntry, omitted []*Command) {
	var builtins []MenuEntry
	for _, b := range Builtins {
		if b.Listed(c) {
			builtins = append(builtins, MenuEntry{b.Name, b.Description})
		}
	}
	room := MaxMenu - len(builtins)
	cmds := c.Commands
	if len(cmds) > room {
		cmds, omitted = cmds[:room], cmds[room:]
	}
	for _, cmd := range cmds {
		menu = append(menu, MenuEntry{cmd.Name, cmd.Description})
	}
	return append(menu, builtins...), omitted
}
