package daemon

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/launch"
	"github.com/relaychat/relay/policy"
)

const helloCmd = `  hello:
    description: say hello
    argv: [/bin/echo, hello from the new policy]
    timeout: 10s
    sandbox: none
`

// TestReloadAppliesEveryKey: what a reload reports applied is applied,
// at once: the concurrency limit, the session limits, the commands.
func TestReloadAppliesEveryKey(t *testing.T) {
	nap := strings.Replace(napCmd, "concurrency: 16", "concurrency: 1", 1)
	o := hopts{commands: nap + echoCmd + helloCmd, maxConcurrent: 2}
	h := newHarness(t, o)
	h.login()
	h.startNap()
	o.commands, o.maxConcurrent, o.auth = nap+helloCmd, 1, "  session_idle: 5m"
	if m := h.reload(o); !strings.Contains(m.Text, "config reloaded: 2 commands") {
		t.Fatalf("got %q, want the reload applied", m.Text)
	}
	h.say("/hello")
	h.expect("too many commands running (limit 1)")
	h.say("/echo gone")
	h.expect("unknown command /echo")
	h.say("/kill j1")
	h.waitFor("the nap killed", func() bool { return len(h.d.runner.Jobs()) == 0 })
	h.say("/hello")
	h.expect("hello from the new policy")
	h.clk.Add(5 * time.Minute)
	h.say("/ps")
	h.expect("session expired (idle for 5m0s)")
}

// TestReloadRefusesRestartKeys: a reload that changes what needs a
// restart is refused whole, naming the keys, and the sandbox keeps
// protecting the paths the daemon uses.
func TestReloadRefusesRestartKeys(t *testing.T) {
	o := hopts{commands: echoCmd}
	h := newHarness(t, o)
	h.login()
	state, auditDir := filepath.Join(h.dir, "state"), filepath.Join(h.dir, "audit")
	moved := o
	moved.commands = helloCmd
	moved.top = fmt.Sprintf("state_dir: %s\naudit:\n  dir: %s\n  checkpoint_interval: 0s\n", filepath.Join(h.dir, "state2"), filepath.Join(h.dir, "audit2"))
	m := h.reload(moved)
	if !strings.Contains(m.Text, "config reload failed") || !strings.Contains(m.Text, "state_dir, audit.dir changed") {
		t.Fatalf("got %q, want the reload refused naming state_dir and audit.dir", m.Text)
	}
	h.say("/echo still")
	h.expect("still")
	h.say("/hello")
	h.expect("unknown command /hello")
	if len(h.find("type", "config", "outcome", "failed")) != 1 {
		t.Error("the refused reload is not audited")
	}
	protected := launch.Protected(h.d.launchConfig(), h.d.o.Launch)
	for _, p := range []string{state, auditDir} {
		if !slices.Contains(protected, p) {
			t.Errorf("the sandbox does not protect %s, which the daemon uses: %v", p, protected)
		}
	}
	// Even a config with other paths in the daemon's hands (a mistake
	// the refusal above rules out) launches with the paths in use.
	wrong := *h.d.config()
	wrong.StateDir, wrong.Audit.Dir, wrong.Telegram.TokenFile = "/elsewhere/state", "/elsewhere/audit", "/elsewhere/token"
	wrong.Notify.Dir = "/elsewhere/notify"
	h.d.cfg.Store(&wrong)
	if lc := h.d.launchConfig(); lc.StateDir != state || lc.Audit.Dir != auditDir || lc.Telegram.TokenFile != "" || lc.Notify.Dir != policy.DefaultNotifyDir {
		t.Errorf("launch config paths %s %s %q %s, want the daemon's %s %s", lc.StateDir, lc.Audit.Dir, lc.Telegram.TokenFile, lc.Notify.Dir, state, auditDir)
	}
}

// TestEveryKeyIsClassified: each setting in policy.Config either applies
// on reload or is named by a refused one; a new key fails here until it
// is put in one class (and docs/reference.md says which).
func TestEveryKeyIsClassified(t *testing.T) {
	want := map[string]string{ // Go field path -> restart-only key, "" = reloadable
		"StateDir": "state_dir", "CommandUser": "",
		"Telegram.APIURL": "telegram.api_url", "Telegram.Mode": "telegram.mode", "Telegram.PollTimeout": "telegram.poll_timeout",
		"Telegram.MaxDocumentBytes": "telegram.max_document_bytes", "Telegram.TokenFile": "telegram.token_file",
		"Telegram.ProtectContent": "telegram.protect_content",
		"Telegram.Webhook.Listen": "telegram.webhook", "Telegram.Webhook.URL": "telegram.webhook", "Telegram.Webhook.TLSCert": "telegram.webhook",
		"Telegram.Webhook.TLSKey": "telegram.webhook", "Telegram.Webhook.MaxBodyBytes": "telegram.webhook",
		"Auth.OwnerID": "auth.owner_id", "Auth.MaxMessageAge": "", "Auth.SessionIdle": "", "Auth.SessionMax": "",
		"Auth.LoginAttempts": "", "Auth.LoginWindow": "", "Auth.LockoutBase": "", "Auth.LockoutMax": "", "Auth.RecoveryCodes": "",
		"Audit.Dir": "audit.dir", "Audit.RotateBytes": "audit.rotate_bytes", "Audit.CheckpointInterval": "",
		"Limits.MaxConcurrent": "", "Limits.DefaultTimeout": "", "Limits.MaxTimeout": "", "Limits.DefaultMaxOutput": "", "Limits.MaxOutput": "",
		"Secrets.NoKeyring": "secrets.keyring",
		"Notify.Group":      "notify.group", "Notify.GID": "notify.group", "Notify.Dir": "notify.dir",
		"Member": "", "Hosts": "", "Groups": "",
		"Fleet.SSH": "", "Fleet.Parallel": "", "Fleet.MaxCalls": "", "Fleet.Timeout": "", "Fleet.MaxOutput": "",
		"Fleet.ConnectTimeout": "", "Fleet.AliveInterval": "", "Fleet.AliveCount": "", "Fleet.Persist": "",
	}
	seen := map[string]bool{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			path := prefix + f.Name
			switch {
			case path == "Source" || path == "Commands":
				continue
			case f.Type.Kind() == reflect.Struct:
				walk(path+".", v.Field(i))
				continue
			}
			seen[path] = true
			key, ok := want[path]
			if !ok {
				t.Errorf("policy.Config.%s is neither reloadable nor restart-only: classify it", path)
				continue
			}
			base := &policy.Config{}
			next := &policy.Config{}
			fv := reflect.ValueOf(next).Elem().FieldByIndex(fieldIndex(t, next, path))
			switch fv.Kind() {
			case reflect.String:
				fv.SetString("changed")
			case reflect.Bool:
				fv.SetBool(true)
			case reflect.Int, reflect.Int64:
				fv.SetInt(7)
			case reflect.Pointer:
				fv.Set(reflect.New(fv.Type().Elem()))
			case reflect.Slice:
				fv.Set(reflect.MakeSlice(fv.Type(), 1, 1))
			default:
				t.Fatalf("%s: kind %s", path, fv.Kind())
			}
			got := restartKeys(base, next)
			if key == "" && len(got) != 0 || key != "" && !slices.Equal(got, []string{key}) {
				t.Errorf("changing %s: reload refuses %v, want %q", path, got, key)
			}
		}
	}
	walk("", reflect.ValueOf(policy.Config{}))
	for path := range want {
		if !seen[path] {
			t.Errorf("%s is classified but is not a field of policy.Config", path)
		}
	}
}

func fieldIndex(t *testing.T, c *policy.Config, path string) []int {
	typ := reflect.TypeOf(*c)
	var idx []int
	for _, name := range strings.Split(path, ".") {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Fatalf("no field %s", path)
		}
		idx = append(idx, f.Index...)
		typ = f.Type
	}
	return idx
}

// TestReloadRefusesInvalid: a config that does not load keeps the old one.
func TestReloadRefusesInvalid(t *testing.T) {
	h := newHarness(t, hopts{})
	h.login()
	bad := hopts{commands: "  broken: {argv: [relative]}\n"}
	if m := h.reload(bad); !strings.Contains(m.Text, "config reload failed") {
		t.Fatalf("got %q", m.Text)
	}
	h.say("/echo still")
	h.expect("still")
}
