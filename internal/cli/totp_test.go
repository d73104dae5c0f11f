package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/relaychat/relay/internal/auth"
	"github.com/relaychat/relay/internal/secrets"
	"github.com/relaychat/relay/policy"
)

var totpNow = time.Date(2026, 3, 4, 5, 6, 10, 0, time.UTC)

type fakeTOTPStore struct{ m map[string][]byte }

func (s *fakeTOTPStore) Get(name string) ([]byte, error) {
	if v, ok := s.m[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%s: %w", name, secrets.ErrNotFound)
}

func (s *fakeTOTPStore) Set(name string, v []byte) error {
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[name] = v
	return nil
}

var uriRE = regexp.MustCompile(`otpauth://totp/\S+`)

// appInput plays the owner: when the prompt reads, it scans what relay
// printed for the URI, as the phone would the QR code, and types the
// app's code. answers lists what to type: "ok" for the right code, any
// other string verbatim.
type appInput struct {
	out     *bytes.Buffer
	answers []string
	pending []byte
}

func (a *appInput) Read(p []byte) (int, error) {
	if len(a.pending) == 0 {
		if len(a.answers) == 0 {
			return 0, errors.New("EOF from test: no more answers")
		}
		ans := a.answers[0]
		a.answers = a.answers[1:]
		if ans == "ok" {
			u, err := url.Parse(uriRE.FindString(a.out.String()))
			if err != nil {
				return 0, err
			}
			ans, err = totp.GenerateCode(u.Query().Get("secret"), totpNow)
			if err != nil {
				return 0, err
			}
		}
		a.pending = []byte(ans + "\n")
	}
	n := copy(p, a.pending)
	a.pending = a.pending[n:]
	return n, nil
}

func enrollEnv(answers ...string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdin: &appInput{out: &out, answers: answers}, Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}, &out, &errb
}

func TestTOTPEnroll(t *testing.T) {
	dir := t.TempDir()
	store := &fakeTOTPStore{}
	env, out, _ := enrollEnv("123", "ok")
	o := enrollOpts{statePath: filepath.Join(dir, "state", auth.StateFile), nRecovery: 4, account: "host", png: filepath.Join(dir, "qr.png"), now: func() time.Time { return totpNow }}
	if err := enroll(env, store, store, o); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	secret := string(store.m[auth.SecretName])
	if secret == "" {
		t.Fatal("no secret stored")
	}
	s := out.String()
	if !strings.Contains(s, "█") || !strings.Contains(s, "otpauth://totp/relay:host?") {
		t.Error("output lacks the QR code or the URI")
	}
	codes := regexp.MustCompile(`(?m)^    ([0-9A-Z]{4}-){3}[0-9A-Z]{4}$`).FindAllString(s, -1)
	if len(codes) != 4 {
		t.Errorf("got %d recovery codes printed, want 4", len(codes))
	}
	fi, err := os.Stat(o.png)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Errorf("png: got %v, %v, want a non-empty 0600 file", fi, err)
	}
	state := readTOTPFile(t, o.statePath)
	for _, c := range codes {
		if strings.Contains(state, strings.TrimSpace(c)) {
			t.Error("state file holds a recovery code")
		}
	}
	if strings.Contains(state, secret) {
		t.Error("state file holds the secret")
	}

	// The saved secret and recovery codes work with the Authenticator.
	a, err := auth.New(auth.Config{OwnerID: 1, MaxMessageAge: time.Minute, SessionIdle: time.Minute, SessionMax: time.Hour,
		Attempts: 3, Window: 30 * time.Second, LockoutBase: time.Minute, LockoutMax: 24 * time.Hour,
		StatePath: o.statePath, Secret: store.m[auth.SecretName], Now: func() time.Time { return totpNow.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	if r := a.Login(1, strings.TrimSpace(codes[0])); !r.OK || !r.UsedRecovery {
		t.Errorf("recovery code login: got %+v, want ok", r)
	}
}

func TestTOTPEnrollRefusals(t *testing.T) {
	t.Run("existing secret without --force", func(t *testing.T) {
		store := &fakeTOTPStore{m: map[string][]byte{auth.SecretName: []byte("OLD")}}
		env, _, _ := enrollEnv("ok")
		err := enroll(env, store, store, enrollOpts{statePath: filepath.Join(t.TempDir(), "a.json"), nRecovery: 1, account: "h", now: func() time.Time { return totpNow }})
		var h *hinted
		if !errors.As(err, &h) || !strings.Contains(h.hint, "--force") {
			t.Fatalf("got %v, want a refusal whose hint names --force", err)
		}
		if string(store.m[auth.SecretName]) != "OLD" {
			t.Error("the old secret was replaced")
		}
	})
	t.Run("existing secret with --force", func(t *testing.T) {
		store := &fakeTOTPStore{m: map[string][]byte{auth.SecretName: []byte("OLD")}}
		env, _, _ := enrollEnv("ok")
		err := enroll(env, store, store, enrollOpts{statePath: filepath.Join(t.TempDir(), "a.json"), nRecovery: 1, account: "h", force: true, now: func() time.Time { return totpNow }})
		if err != nil || string(store.m[auth.SecretName]) == "OLD" {
			t.Fatalf("got %v, want the secret replaced", err)
		}
	})
	t.Run("relay running", func(t *testing.T) {
		dir := t.TempDir()
		def, err := policy.Default(func(k string) string {
			if k == "HOME" {
				return dir
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		c := auth.ConfigFrom(def.Auth, dir)
		c.OwnerID, c.Secret = 1, []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
		running, err := auth.New(c)
		if err != nil {
			t.Fatal(err)
		}
		defer running.Close()
		store := &fakeTOTPStore{}
		env, out, _ := enrollEnv("ok")
		err = enroll(env, store, store, enrollOpts{statePath: c.StatePath, nRecovery: 1, account: "h", now: func() time.Time { return totpNow }})
		if !errors.Is(err, auth.ErrStateInUse) || !strings.Contains(err.Error(), "stop the running relay") {
			t.Fatalf("got %v, want a refusal saying to stop the relay", err)
		}
		if strings.Contains(out.String(), "otpauth://") || len(store.m) != 0 {
			t.Error("a secret was shown or stored though it could not take effect")
		}
	})
	t.Run("wrong codes", func(t *testing.T) {
		store := &fakeTOTPStore{}
		env, _, errb := enrollEnv("000000", "111111x", "999999")
		path := filepath.Join(t.TempDir(), "a.json")
		err := enroll(env, store, store, enrollOpts{statePath: path, nRecovery: 1, account: "h", now: func() time.Time { return totpNow }})
		if err == nil || !strings.Contains(err.Error(), "nothing was stored") {
			t.Fatalf("got %v, want a refusal", err)
		}
		if len(store.m) != 0 {
			t.Error("a secret was stored without a matching code")
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("the auth state was reset without a matching code")
		}
		if n := strings.Count(errb.String(), "code shown by the app"); n != maxCodeTries {
			t.Errorf("got %d prompts, want %d", n, maxCodeTries)
		}
	})
	t.Run("no input", func(t *testing.T) {
		store := &fakeTOTPStore{}
		var out bytes.Buffer
		env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := enroll(env, store, store, enrollOpts{statePath: filepath.Join(t.TempDir(), "a.json"), account: "h", now: time.Now}); err == nil {
			t.Fatal("got nil, want an error")
		}
		if len(store.m) != 0 {
			t.Error("a secret was stored without a code")
		}
	})
	t.Run("png path exists", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(dir, "victim")
		if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "qr.png")
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
		store := &fakeTOTPStore{}
		env, _, _ := enrollEnv("ok")
		err := enroll(env, store, store, enrollOpts{statePath: filepath.Join(dir, "a.json"), account: "h", png: link, now: func() time.Time { return totpNow }})
		if err == nil {
			t.Fatal("got nil, want a refusal to write through an existing path")
		}
		if got := readTOTPFile(t, victim); got != "keep" {
			t.Errorf("victim file: got %q, want it untouched", got)
		}
	})
}

func TestTOTPStatus(t *testing.T) {
	dir := t.TempDir()
	store := &fakeTOTPStore{}
	env, _, _ := enrollEnv("ok")
	statePath := filepath.Join(dir, auth.StateFile)
	if err := enroll(env, store, store, enrollOpts{statePath: statePath, nRecovery: 3, account: "h", now: func() time.Time { return totpNow }}); err != nil {
		t.Fatal(err)
	}
	secret := string(store.m[auth.SecretName])
	var out bytes.Buffer
	senv := &Env{Stdout: &out, Stderr: &out}
	if err := totpStatus(senv, "file (/x)", nil, statePath, totpNow); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"totp: enrolled", "last accepted code: step", "failed attempts in a row: 0", "login lockout: none", "/lock: off", "recovery codes left: 3"} {
		if !strings.Contains(s, want) {
			t.Errorf("status lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, secret) {
		t.Error("status shows the secret")
	}
	out.Reset()
	err := totpStatus(senv, "", fmt.Errorf("x: %w", secrets.ErrNotFound), filepath.Join(dir, "none.json"), totpNow)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != ExitNotSetup || !strings.Contains(out.String(), "not enrolled") {
		t.Errorf("not enrolled: got %v and %q, want exit %d and a line saying so", err, out.String(), ExitNotSetup)
	}
}

func readTOTPFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
