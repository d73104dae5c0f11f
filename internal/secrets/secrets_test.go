package secrets

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

// Distinct, recognisable values per source, so a test can tell which one
// it got and can search any output for them.
const (
	credValue = "cred-SECRET-1111111111"
	ringValue = "ring-SECRET-2222222222"
	envValue  = "env-SECRET-33333333333"
	fileValue = "file-SECRET-4444444444"
)

var allValues = []string{credValue, ringValue, envValue, fileValue}

type fixture struct {
	credDir string
	dir     string
	env     map[string]string
	ring    *fakeKeyring
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		credDir: filepath.Join(root, "credentials"),
		dir:     filepath.Join(root, "secrets"),
		env:     map[string]string{},
		ring:    newFake(),
	}
	for _, d := range []string{f.credDir, f.dir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) store(mod ...func(*Options)) *Store {
	o := Options{
		CredentialsDir: f.credDir,
		KeyringService: "relay-test",
		Getenv:         func(k string) string { return f.env[k] },
		Dir:            f.dir,
		Keyring:        f.ring,
	}
	for _, m := range mod {
		m(&o)
	}
	return New(o)
}

func writeMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// noSecret fails the test if any secret value appears in any of the
// strings: an error's text in every verb, a Probe, a Store.
func noSecret(t *testing.T, what string, vs ...any) {
	t.Helper()
	for _, v := range vs {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			s := fmt.Sprintf(verb, v)
			for _, secret := range allValues {
				// Any 8-byte run counts, in clear or in hex.
				for i := 0; i+8 <= len(secret); i++ {
					part := secret[i : i+8]
					if strings.Contains(s, part) || strings.Contains(s, hex.EncodeToString([]byte(part))) {
						t.Errorf("%s: %s output %q contains part %q of secret %q", what, verb, s, part, secret)
						break
					}
				}
			}
		}
	}
}

func TestGetSourceOrder(t *testing.T) {
	type present struct{ cred, ring, env, file bool }
	tests := []struct {
		name    string
		secret  string
		have    present
		want    Source
		wantVal string
	}{
		{"credential wins over all", BotToken, present{true, true, true, true}, SourceCredential, credValue},
		{"keyring wins over env and file", BotToken, present{false, true, true, true}, SourceKeyring, ringValue},
		{"env wins over file", BotToken, present{false, false, true, true}, SourceEnv, envValue},
		{"file last", BotToken, present{false, false, false, true}, SourceFile, fileValue},
		{"env is token only", TOTPSecret, present{false, false, true, true}, SourceFile, fileValue},
		{"totp in keyring", TOTPSecret, present{false, true, false, true}, SourceKeyring, ringValue},
		{"audit key credential", AuditKey, present{true, false, false, true}, SourceCredential, credValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.have.cred {
				writeMode(t, filepath.Join(f.credDir, tt.secret), credValue+"\n", 0o400)
			}
			if tt.have.ring {
				f.ring.items["relay-test\x00"+tt.secret] = ringValue
			}
			if tt.have.env {
				f.env[EnvToken] = envValue
			}
			if tt.have.file {
				writeMode(t, filepath.Join(f.dir, tt.secret), fileValue+"\n", 0o600)
			}
			s := f.store()
			v, err := s.Get(tt.secret)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(v) != tt.wantVal {
				t.Errorf("Get: got a value of length %d from the wrong source, want the %s value", len(v), tt.want)
			}
			src, err := s.Source(tt.secret)
			if err != nil || src != tt.want {
				t.Errorf("Source: got %q, %v; want %q, nil", src, err, tt.want)
			}
			p, err := s.Probe(tt.secret)
			if err != nil || p.Source != tt.want || p.Location == "" || len(p.Skipped) != 0 {
				t.Errorf("Probe: got %+v, %v; want source %q, a location, nothing skipped", p, err, tt.want)
			}
			noSecret(t, "probe", p, s)
			// A credential short-circuits: under systemd a slow or locked
			// keyring must not even be asked.
			if tt.want == SourceCredential && f.ring.calls != 0 {
				t.Errorf("keyring asked %d times despite a credential, want 0", f.ring.calls)
			}
		})
	}
}

func TestEnvEmptyIsUnset(t *testing.T) {
	f := newFixture(t)
	f.env[EnvToken] = ""
	writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o600)
	if src, err := f.store().Source(BotToken); src != SourceFile || err != nil {
		t.Errorf("got %q, %v; want %q, nil", src, err, SourceFile)
	}
}

func TestTokenFileOption(t *testing.T) {
	f := newFixture(t)
	tokenFile := filepath.Join(f.dir, "custom-token")
	writeMode(t, tokenFile, fileValue+"\r\n", 0o600)
	// <Dir>/bot-token also exists but TokenFile takes its place.
	writeMode(t, filepath.Join(f.dir, BotToken), "other", 0o600)
	s := f.store(func(o *Options) { o.TokenFile = tokenFile })
	v, err := s.Get(BotToken)
	if err != nil || string(v) != fileValue {
		t.Fatalf("Get: got len %d, %v; want the token file's value with CRLF trimmed", len(v), err)
	}
	p, _ := s.Probe(BotToken)
	if p.Location != tokenFile {
		t.Errorf("location: got %q, want %q", p.Location, tokenFile)
	}
	// TokenFile is for the token only.
	if _, err := s.Get(TOTPSecret); !errors.Is(err, ErrNotFound) {
		t.Errorf("totp: got %v, want ErrNotFound", err)
	}
}

func TestFileRefused(t *testing.T) {
	tests := []struct {
		name     string
		fileMode os.FileMode
		dirMode  os.FileMode
		setup    func(t *testing.T, dir, path string)
		want     string // substring of the error
	}{
		{name: "group readable", fileMode: 0o640, dirMode: 0o700, want: "chmod 600"},
		{name: "world readable", fileMode: 0o604, dirMode: 0o700, want: "chmod 600"},
		{name: "0644", fileMode: 0o644, dirMode: 0o700, want: "chmod 600"},
		{name: "group writable", fileMode: 0o620, dirMode: 0o700, want: "chmod 600"},
		{name: "dir group writable", fileMode: 0o600, dirMode: 0o770, want: "chmod 700"},
		{name: "dir world writable", fileMode: 0o600, dirMode: 0o777, want: "chmod 700"},
		{name: "dir sticky world writable", fileMode: 0o600, dirMode: 0o1777, want: "chmod 700"},
		{name: "symlink", fileMode: 0o600, dirMode: 0o700, want: "symbolic link",
			setup: func(t *testing.T, dir, path string) {
				target := filepath.Join(dir, "target")
				if err := os.Rename(path, target); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "fifo", fileMode: 0o600, dirMode: 0o700, want: "not a regular file",
			setup: func(t *testing.T, dir, path string) {
				os.Remove(path)
				if err := syscall.Mkfifo(path, 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "owned by another user", fileMode: 0o600, dirMode: 0o700, want: "owned by uid",
			setup: func(t *testing.T, dir, path string) {
				if os.Geteuid() != 0 {
					t.Skip("needs root to chown")
				}
				if err := os.Chown(path, 4242, 4242); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "too large", fileMode: 0o600, dirMode: 0o700, want: "larger than",
			setup: func(t *testing.T, dir, path string) {
				big := strings.Repeat(fileValue, maxSecretSize/len(fileValue)+2)
				writeMode(t, path, big, 0o600)
			}},
		{name: "empty", fileMode: 0o600, dirMode: 0o700, want: "is empty",
			setup: func(t *testing.T, dir, path string) { writeMode(t, path, "\n", 0o600) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			// The real token is in the env too: a refused file must not be
			// silently replaced, and must not be skipped either.
			path := filepath.Join(f.dir, TOTPSecret)
			writeMode(t, path, fileValue+"\n", tt.fileMode)
			if tt.setup != nil {
				tt.setup(t, f.dir, path)
			}
			if err := os.Chmod(f.dir, tt.dirMode); err != nil {
				t.Fatal(err)
			}
			s := f.store()
			v, err := s.Get(TOTPSecret)
			if err == nil {
				t.Fatalf("Get: got a value of length %d, want an error containing %q", len(v), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Get: got %q, want it to contain %q", err, tt.want)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("Get: got ErrNotFound for a refused file, want a refusal: %v", err)
			}
			p, perr := s.Probe(TOTPSecret)
			if perr == nil || p.Source != "" {
				t.Errorf("Probe: got %q, %v; want no source and an error", p.Source, perr)
			}
			noSecret(t, "refused file", err, perr, p)
		})
	}
}

func TestCredentialErrors(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		f := newFixture(t)
		if err := os.Mkdir(filepath.Join(f.credDir, BotToken), 0o700); err != nil {
			t.Fatal(err)
		}
		writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o600)
		_, err := f.store().Get(BotToken)
		if err == nil || !strings.Contains(err.Error(), "LoadCredential=") {
			t.Errorf("got %v, want a refusal naming LoadCredential= (a broken credential must not fall through)", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		f := newFixture(t)
		writeMode(t, filepath.Join(f.credDir, BotToken), "", 0o400)
		_, err := f.store().Get(BotToken)
		if err == nil || !strings.Contains(err.Error(), "is empty") {
			t.Errorf("got %v, want an empty-credential error", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		f := newFixture(t)
		writeMode(t, filepath.Join(f.credDir, BotToken), strings.Repeat(credValue, maxSecretSize), 0o400)
		_, err := f.store().Get(BotToken)
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("got %v, want a size refusal", err)
		}
		noSecret(t, "large credential", err)
	})
	t.Run("systemd modes accepted", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o400, 0o440, 0o600} {
			f := newFixture(t)
			writeMode(t, filepath.Join(f.credDir, BotToken), credValue, mode)
			if err := os.Chmod(f.credDir, 0o500); err != nil {
				t.Fatal(err)
			}
			v, err := f.store().Get(BotToken)
			if err != nil || string(v) != credValue {
				t.Errorf("mode %04o: got len %d, %v; want the credential", mode, len(v), err)
			}
		}
	})
}

func TestNotFound(t *testing.T) {
	f := newFixture(t)
	s := f.store(func(o *Options) { o.TokenFile = filepath.Join(f.dir, "tok") })
	_, err := s.Get(BotToken)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	for _, want := range []string{f.credDir, "os keyring", EnvToken, filepath.Join(f.dir, "tok")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to mention %q", err, want)
		}
	}
	src, err := s.Source(BotToken)
	if src != "" || !errors.Is(err, ErrNotFound) {
		t.Errorf("Source: got %q, %v; want \"\", ErrNotFound", src, err)
	}
}

func TestNoSources(t *testing.T) {
	s := New(Options{Getenv: func(string) string { return "" }, Keyring: NoKeyring})
	_, err := s.Get(BotToken)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if !errors.Is(err, ErrKeyringOff) {
		t.Errorf("got %v, want it to say the keyring is off", err)
	}
}

func TestKeyringFallsThrough(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind error
	}{
		{"no bus address", errNoBusAddress, ErrNoSessionBus},
		{"godbus no address", errors.New("dbus: couldn't determine address of session bus"), ErrNoSessionBus},
		{"connection refused", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, ErrNoSessionBus},
		{"socket gone", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}, ErrNoSessionBus},
		{"no provider", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"}}, ErrNoSecretService},
		{"no provider pointer", &dbus.Error{Name: "org.freedesktop.DBus.Error.NameHasNoOwner"}, ErrNoSecretService},
		{"activation failed", dbus.Error{Name: "org.freedesktop.DBus.Error.Spawn.ChildExited"}, ErrNoSecretService},
		{"locked", dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}, ErrKeyringLocked},
		{"no default collection", dbus.Error{Name: "org.freedesktop.Secret.Error.NoSuchObject"}, ErrKeyringLocked},
		{"prompt dismissed", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'"), ErrKeyringLocked},
		{"no reply", dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply"}, ErrKeyringTimeout},
		{"other dbus", dbus.Error{Name: "org.example.Weird"}, ErrKeyring},
		{"other", errors.New("something else"), ErrKeyring},
		{"off", ErrKeyringOff, ErrKeyringOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.ring.getErr = tt.err
			writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o600)
			s := f.store()
			v, err := s.Get(BotToken)
			if err != nil || string(v) != fileValue {
				t.Fatalf("Get: got len %d, %v; want the file's value", len(v), err)
			}
			p, err := s.Probe(BotToken)
			if err != nil || p.Source != SourceFile {
				t.Fatalf("Probe: got %q, %v; want %q", p.Source, err, SourceFile)
			}
			if len(p.Skipped) != 1 || p.Skipped[0].Source != SourceKeyring {
				t.Fatalf("Skipped: got %+v, want the keyring", p.Skipped)
			}
			kerr := p.Skipped[0].Err
			if !errors.Is(kerr, tt.kind) {
				t.Errorf("kind: got %v, want %v", kerr, tt.kind)
			}
			if !wraps(kerr, tt.err) {
				t.Errorf("cause: got %v, want it to wrap %v", kerr, tt.err)
			}
			var ke *KeyringError
			if !errors.As(kerr, &ke) {
				t.Fatalf("got %T, want *KeyringError", kerr)
			}
			if tt.kind != ErrKeyring && tt.kind != ErrKeyringOff && ke.Hint() == "" {
				t.Errorf("hint: got none for %v", tt.kind)
			}
			// The message is printed on every command of a headless host:
			// one clause, the hint kept apart for the caller to show once.
			if tt.kind != ErrKeyring && tt.kind != ErrKeyringTimeout {
				if want := "os keyring: " + tt.kind.Error(); kerr.Error() != want {
					t.Errorf("message: got %q, want %q", kerr, want)
				}
			}
			if ke.Hint() != "" && strings.Contains(kerr.Error(), ke.Hint()) {
				t.Errorf("message %q carries the hint, which the caller shows once", kerr)
			}

			// With nothing below the keyring, the not-found error says why
			// the keyring was skipped.
			os.Remove(filepath.Join(f.dir, BotToken))
			_, err = s.Get(BotToken)
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, tt.kind) {
				t.Errorf("not found: got %v, want ErrNotFound and %v", err, tt.kind)
			}
		})
	}
}

func TestHints(t *testing.T) {
	tests := []struct {
		kind error
		want []string
	}{
		{ErrNoSessionBus, []string{"DBUS_SESSION_BUS_ADDRESS", "secrets.keyring: false"}},
		{ErrNoSecretService, []string{"org.freedesktop.secrets", "install gnome-keyring", "secrets.keyring: false"}},
		{ErrKeyringLocked, []string{"unlock", "secrets.keyring: false"}},
		{ErrKeyringTimeout, []string{"unlock", "secrets.keyring: false"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind.Error(), func(t *testing.T) {
			e := &KeyringError{Op: "get", Name: BotToken, Kind: tt.kind, Err: errors.New("cause")}
			for _, w := range tt.want {
				if !strings.Contains(e.Hint(), w) {
					t.Errorf("got %q, want it to mention %q", e.Hint(), w)
				}
			}
			// The same fix for every secret: a TOTP secret is not told to
			// run "relay token set".
			if strings.Contains(e.Hint(), "token") {
				t.Errorf("hint %q names the token", e.Hint())
			}
		})
	}
}

func TestKeyringTimeout(t *testing.T) {
	f := newFixture(t)
	f.ring.block = make(chan struct{})
	t.Cleanup(func() { close(f.ring.block) })
	writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o600)
	// The fake never answers until cleanup, so the timeout always fires;
	// its length only decides how long the test takes.
	s := f.store(func(o *Options) { o.KeyringTimeout = time.Millisecond })
	p, err := s.Probe(BotToken)
	if err != nil || p.Source != SourceFile {
		t.Fatalf("got %q, %v; want the file", p.Source, err)
	}
	if len(p.Skipped) != 1 || !errors.Is(p.Skipped[0].Err, ErrKeyringTimeout) {
		t.Errorf("Skipped: got %+v, want a keyring timeout", p.Skipped)
	}
	if err := s.Set(BotToken, []byte(ringValue)); !errors.Is(err, ErrKeyringTimeout) {
		t.Errorf("Set: got %v, want a timeout", err)
	}
}

func TestKeyringPanicContained(t *testing.T) {
	f := newFixture(t)
	f.ring.panicV = "panic carrying " + ringValue
	_, err := f.store().Get(BotToken)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound with the keyring skipped", err)
	}
	if !strings.Contains(err.Error(), "panicked") {
		t.Errorf("got %q, want it to say the backend panicked", err)
	}
	noSecret(t, "keyring panic", err)
}

func TestSecretsNeverInErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, f *fixture) error
	}{
		{"keyring set error echoing the value", func(t *testing.T, f *fixture) error {
			f.ring.setErr = dbus.Error{Name: "org.example.Echo", Body: []any{"could not store " + ringValue}}
			return f.store().Set(BotToken, []byte(ringValue))
		}},
		{"keyring set error quoting part of the value", func(t *testing.T, f *fixture) error {
			f.ring.setErr = errors.New("bad secret near '" + ringValue[3:14] + "'")
			return f.store().Set(BotToken, []byte(ringValue))
		}},
		{"keyring set error, pointer", func(t *testing.T, f *fixture) error {
			f.ring.setErr = &dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked", Body: []any{ringValue}}
			return f.store().Set(BotToken, []byte(ringValue))
		}},
		{"keyring get error", func(t *testing.T, f *fixture) error {
			f.ring.items["relay-test\x00"+BotToken] = ringValue
			f.ring.getErr = errors.New("failed to unlock correct collection '/x'")
			_, err := f.store().Get(BotToken)
			return err
		}},
		{"keyring delete error", func(t *testing.T, f *fixture) error {
			f.ring.items["relay-test\x00"+BotToken] = ringValue
			f.ring.delErr = errors.New("boom")
			_, err := f.store().Delete(BotToken)
			return err
		}},
		{"bad file mode", func(t *testing.T, f *fixture) error {
			writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o644)
			_, err := f.store().Get(BotToken)
			return err
		}},
		{"bad token file mode with env present", func(t *testing.T, f *fixture) error {
			p := filepath.Join(f.dir, "tok")
			writeMode(t, p, fileValue, 0o640)
			_, err := f.store(func(o *Options) { o.TokenFile = p }).Get(BotToken)
			return err
		}},
		{"bad credential", func(t *testing.T, f *fixture) error {
			writeMode(t, filepath.Join(f.credDir, BotToken), strings.Repeat(credValue, maxSecretSize), 0o400)
			_, err := f.store().Get(BotToken)
			return err
		}},
		{"set file in unsafe dir", func(t *testing.T, f *fixture) error {
			if err := os.Chmod(f.dir, 0o777); err != nil {
				t.Fatal(err)
			}
			_, err := f.store().SetFile(BotToken, []byte(fileValue))
			return err
		}},
		{"set file where a directory is", func(t *testing.T, f *fixture) error {
			if err := os.Mkdir(filepath.Join(f.dir, BotToken), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(f.dir, BotToken, "x"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := f.store().SetFile(BotToken, []byte(fileValue))
			return err
		}},
		{"not found with keyring skipped", func(t *testing.T, f *fixture) error {
			f.ring.getErr = dbus.Error{Name: "org.example.X", Body: []any{"oops"}}
			_, err := f.store().Get(BotToken)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.env[EnvToken+"_UNUSED"] = envValue
			err := tt.run(t, f)
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			noSecret(t, tt.name, err)
			// Unwrapping must not reach the secret either.
			for u := []error{err}; len(u) > 0; {
				e := u[0]
				u = u[1:]
				noSecret(t, tt.name+" (unwrapped)", e)
				switch x := e.(type) {
				case interface{ Unwrap() error }:
					if w := x.Unwrap(); w != nil {
						u = append(u, w)
					}
				case interface{ Unwrap() []error }:
					for _, w := range x.Unwrap() {
						if w != nil {
							u = append(u, w)
						}
					}
				}
			}
		})
	}
}

func TestSet(t *testing.T) {
	f := newFixture(t)
	s := f.store()
	if err := s.Set(TOTPSecret, []byte(ringValue)); err != nil {
		t.Fatal(err)
	}
	if got := f.ring.items["relay-test\x00"+TOTPSecret]; got != ringValue {
		t.Errorf("keyring holds a value of length %d, want the stored one", len(got))
	}
	if err := s.Set(TOTPSecret, nil); err == nil {
		t.Error("Set empty: got nil, want a refusal")
	}
	if err := New(Options{Keyring: NoKeyring}).Set(BotToken, []byte("x")); err == nil {
		t.Error("Set with keyring off: got nil, want an error")
	}
}

func TestSetFile(t *testing.T) {
	t.Run("creates a 0700 dir and a 0600 file", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "state", "secrets")
		s := New(Options{Dir: dir, Keyring: NoKeyring, Getenv: func(string) string { return "" }})
		path, err := s.SetFile(AuditKey, []byte(fileValue))
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, AuditKey); path != want {
			t.Errorf("path: got %q, want %q", path, want)
		}
		for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: got mode %04o, want %04o", p, got, want)
			}
		}
		v, err := s.Get(AuditKey)
		if err != nil || string(v) != fileValue {
			t.Errorf("read back: got len %d, %v; want the stored value", len(v), err)
		}
		// Overwrite replaces, never appends.
		if _, err := s.SetFile(AuditKey, []byte(envValue)); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Get(AuditKey); string(v) != envValue {
			t.Errorf("after overwrite: got len %d, want the new value", len(v))
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Errorf("dir holds %d entries, want 1 (no temp files left)", len(ents))
		}
	})
	t.Run("token file", func(t *testing.T) {
		f := newFixture(t)
		tok := filepath.Join(f.dir, "token")
		path, err := f.store(func(o *Options) { o.TokenFile = tok }).SetFile(BotToken, []byte(fileValue))
		if err != nil || path != tok {
			t.Errorf("got %q, %v; want %q", path, err, tok)
		}
	})
	t.Run("refuses a group-writable dir", func(t *testing.T) {
		f := newFixture(t)
		if err := os.Chmod(f.dir, 0o770); err != nil {
			t.Fatal(err)
		}
		_, err := f.store().SetFile(BotToken, []byte(fileValue))
		if err == nil || !strings.Contains(err.Error(), "chmod 700") {
			t.Errorf("got %v, want a refusal with the chmod 700 hint", err)
		}
		if _, serr := os.Stat(filepath.Join(f.dir, BotToken)); serr == nil {
			t.Error("the file was written despite the refusal")
		}
	})
	t.Run("no dir", func(t *testing.T) {
		_, err := New(Options{Keyring: NoKeyring}).SetFile(BotToken, []byte("x"))
		if err == nil {
			t.Error("got nil, want an error")
		}
	})
	t.Run("empty", func(t *testing.T) {
		if _, err := newFixture(t).store().SetFile(BotToken, nil); err == nil {
			t.Error("got nil, want a refusal")
		}
	})
}

func TestDelete(t *testing.T) {
	t.Run("keyring and file, never the credential", func(t *testing.T) {
		f := newFixture(t)
		cred := filepath.Join(f.credDir, BotToken)
		writeMode(t, cred, credValue, 0o400)
		f.ring.items["relay-test\x00"+BotToken] = ringValue
		writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o600)
		s := f.store()
		removed, err := s.Delete(BotToken)
		if err != nil || fmt.Sprint(removed) != "[keyring file]" {
			t.Fatalf("got %v, %v; want [keyring file], nil", removed, err)
		}
		if _, err := os.Stat(cred); err != nil {
			t.Errorf("credential: got %v, want it untouched", err)
		}
		if src, _ := s.Source(BotToken); src != SourceCredential {
			t.Errorf("after delete: source %q, want %q", src, SourceCredential)
		}
	})
	t.Run("nothing stored", func(t *testing.T) {
		removed, err := newFixture(t).store().Delete(BotToken)
		if !errors.Is(err, ErrNotFound) || len(removed) != 0 {
			t.Errorf("got %v, %v; want nothing, ErrNotFound", removed, err)
		}
	})
	t.Run("keyring unreachable still removes the file", func(t *testing.T) {
		f := newFixture(t)
		f.ring.delErr = errNoBusAddress
		writeMode(t, filepath.Join(f.dir, BotToken), fileValue, 0o600)
		removed, err := f.store().Delete(BotToken)
		if fmt.Sprint(removed) != "[file]" || !errors.Is(err, ErrNoSessionBus) {
			t.Errorf("got %v, %v; want [file] and the keyring's error", removed, err)
		}
	})
}

func TestBackendMayReturnOurErrNotFound(t *testing.T) {
	f := newFixture(t)
	f.ring.getErr = fmt.Errorf("wrapped: %w", ErrNotFound)
	p, err := f.store().Probe(BotToken)
	if !errors.Is(err, ErrNotFound) || len(p.Skipped) != 0 {
		t.Errorf("got %+v, %v; want plain not-found with nothing skipped", p, err)
	}
}

func TestCheckName(t *testing.T) {
	for _, name := range []string{"", "../bot-token", "a/b", ".hidden", "Bot", "x\x00", strings.Repeat("a", 65), "-x"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			f := newFixture(t)
			s := f.store()
			if _, err := s.Get(name); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Get: got %v, want an invalid-name error", err)
			}
			if err := s.Set(name, []byte("v")); err == nil {
				t.Error("Set: got nil, want an error")
			}
			if _, err := s.SetFile(name, []byte("v")); err == nil {
				t.Error("SetFile: got nil, want an error")
			}
			if _, err := s.Delete(name); err == nil {
				t.Error("Delete: got nil, want an error")
			}
			if f.ring.calls != 0 {
				t.Errorf("keyring called %d times for an invalid name, want 0", f.ring.calls)
			}
		})
	}
}

func TestStoreFormatting(t *testing.T) {
	f := newFixture(t)
	f.ring.items["relay-test\x00"+BotToken] = ringValue
	f.env[EnvToken] = envValue
	s := f.store()
	noSecret(t, "store", s, *s)
	if got := fmt.Sprintf("%#v", s); !strings.Contains(got, "relay-test") {
		t.Errorf("%%#v: got %q, want the safe summary", got)
	}
}

func TestSystemKeyringNoBus(t *testing.T) {
	// With no bus address and no per-user socket the default backend must
	// answer at once, without godbus (which would spawn dbus-launch).
	k := goKeyring{getenv: func(string) string { return "" }, runtimeDir: t.TempDir()}
	s := New(Options{Keyring: k, Getenv: func(string) string { return "" }})
	p, err := s.Probe(BotToken)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if len(p.Skipped) != 1 || !errors.Is(p.Skipped[0].Err, ErrNoSessionBus) {
		t.Errorf("Skipped: got %+v, want no session bus", p.Skipped)
	}
	if err := s.Set(BotToken, []byte("x")); !errors.Is(err, ErrNoSessionBus) {
		t.Errorf("Set: got %v, want no session bus", err)
	}
	if _, err := s.Delete(BotToken); !errors.Is(err, ErrNoSessionBus) {
		t.Errorf("Delete: got %v, want no session bus", err)
	}
	for _, addr := range []string{"", "autolaunch:"} {
		k.getenv = func(string) string { return addr }
		if err := k.reachable(); err == nil {
			t.Errorf("address %q: got reachable, want errNoBusAddress", addr)
		}
	}
	if err := os.WriteFile(filepath.Join(k.runtimeDir, "bus"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.reachable(); err != nil {
		t.Errorf("with %s/bus: got %v, want reachable", k.runtimeDir, err)
	}
}

// wraps is errors.Is, extended to godbus's dbus.Error, which holds a slice
// and so is not comparable: it matches by D-Bus error name.
func wraps(err, target error) bool {
	if n := dbusErrorName(target); n != "" {
		return dbusErrorName(err) == n
	}
	return errors.Is(err, target)
}

func TestWithKeyringService(t *testing.T) {
	f := newFixture(t)
	s := f.store()
	other := s.WithKeyringService("relay-other")
	if err := other.Set(BotToken, []byte(ringValue)); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.ring.items["relay-other\x00"+BotToken]; !ok {
		t.Error("the copy did not store under its own service")
	}
	if _, err := s.Get(BotToken); !errors.Is(err, ErrNotFound) {
		t.Errorf("original: got %v, want ErrNotFound (its service is unchanged)", err)
	}
	if same := s.WithKeyringService(""); same.o.KeyringService != "relay-test" {
		t.Errorf("empty service: got %q, want the original kept", same.o.KeyringService)
	}
}

// TestKeyringOff: with the keyring turned off (secrets.keyring: false) the
// keyring is never called, never named as a place looked in, and a Set
// fails as "off", which callers treat as "no keyring here".
func TestKeyringOff(t *testing.T) {
	f := newFixture(t)
	f.ring.items["relay-test\x00"+TOTPSecret] = "in-the-keyring"
	s := f.store(func(o *Options) { o.KeyringOff = true })

	_, err := s.Get(TOTPSecret)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: got %v, want ErrNotFound (the keyring's copy must not be read)", err)
	}
	if strings.Contains(err.Error(), "keyring") {
		t.Errorf("Get: got %q, want no mention of the keyring", err)
	}
	p, _ := s.Probe(TOTPSecret)
	if len(p.Skipped) != 0 {
		t.Errorf("Probe: got skipped %+v, want none: an off keyring is not a failure", p.Skipped)
	}
	err = s.Set(TOTPSecret, []byte("x"))
	if !errors.Is(err, ErrKeyringOff) || !Absent(err) {
		t.Errorf("Set: got %v, want ErrKeyringOff, which Absent accepts", err)
	}
	writeMode(t, filepath.Join(f.dir, TOTPSecret), fileValue, 0o600)
	v, p, err := s.Lookup(TOTPSecret)
	if err != nil || string(v) != fileValue || p.Source != SourceFile {
		t.Errorf("Lookup: got len %d from %q, %v; want the file", len(v), p.Source, err)
	}
	if f.ring.calls != 0 {
		t.Errorf("the keyring was called %d times, want never", f.ring.calls)
	}
}

// TestNotFoundNamesTheSecret: each secret's not-found error names that
// secret (internal/cli hints the command that stores it), and a skipped
// keyring appears as its kind in one clause, not as a paragraph.
func TestNotFoundNamesTheSecret(t *testing.T) {
	f := newFixture(t)
	f.ring.getErr = errNoBusAddress
	s := f.store()
	for _, name := range []string{BotToken, TOTPSecret, AuditKey} {
		_, err := s.Get(name)
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Name != name {
			t.Errorf("%s: got %v, want a NotFoundError naming it", name, err)
		}
		if name != BotToken && strings.Contains(err.Error(), "token") {
			t.Errorf("%s: got %q, which talks about the token", name, err)
		}
		if !strings.Contains(err.Error(), "os keyring (skipped: no D-Bus session bus)") {
			t.Errorf("%s: got %q, want the keyring named as skipped, in one clause", name, err)
		}
		if !errors.Is(err, ErrNoSessionBus) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: got %v, want it to wrap ErrNotFound and ErrNoSessionBus", name, err)
		}
	}
}
