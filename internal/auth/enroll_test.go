package auth

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaychat/relay/internal/secrets"
)

func TestSecretNameMatchesStore(t *testing.T) {
	if SecretName != secrets.TOTPSecret {
		t.Errorf("got %q, want secrets.TOTPSecret %q", SecretName, secrets.TOTPSecret)
	}
}

func TestEnrollParameters(t *testing.T) {
	e, err := Enroll("relay", "owner@host")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.URI())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" {
		t.Errorf("got %s://%s, want otpauth://totp", u.Scheme, u.Host)
	}
	for k, want := range map[string]string{"algorithm": "SHA1", "digits": "6", "period": "30", "issuer": "relay"} {
		if got := q.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	raw, err := b32.DecodeString(q.Get("secret"))
	if err != nil || len(raw) != 20 {
		t.Errorf("secret: got %d bytes (err %v), want 20", len(raw), err)
	}
	f, err := Enroll("relay", "owner@host")
	if err != nil {
		t.Fatal(err)
	}
	if f.secret == e.secret {
		t.Error("two enrolments produced the same secret")
	}
	if img, err := e.Image(200, 200); err != nil || img.Bounds().Dx() != 200 {
		t.Errorf("image: got %v, %v, want a 200px image", img, err)
	}
	if _, err := Enroll("", "x"); err == nil {
		t.Error("empty issuer: got nil, want an error")
	}
}

func TestEnrollConfirmAndSave(t *testing.T) {
	now := t0
	e, err := Enroll("relay", "owner")
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{}
	path := t.TempDir() + "/new/auth.json"
	if _, err := e.Save(store, path, 3); err == nil {
		t.Fatal("save before confirm: got nil, want an error")
	}
	if len(store.m) != 0 {
		t.Fatal("save before confirm stored the secret")
	}
	bad := []string{"", "12345", "abcdef", "1234567"}
	for _, b := range bad {
		if err := e.Confirm(b, now); err == nil {
			t.Errorf("confirm %q: got nil, want an error", b)
		}
	}
	stale, _ := codeAt(e.secret, stepAt(now)-2)
	if err := e.Confirm(stale, now); !errors.Is(err, ErrCodeMismatch) {
		t.Errorf("code two steps old: got %v, want %v", err, ErrCodeMismatch)
	}
	good, _ := codeAt(e.secret, stepAt(now))
	if err := e.Confirm(good, now); err != nil {
		t.Fatalf("current code: got %v, want nil", err)
	}
	codes, err := e.Save(store, path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 3 {
		t.Errorf("got %d recovery codes, want 3", len(codes))
	}
	if got := string(store.m[SecretName]); got != e.secret {
		t.Error("stored secret differs from the enrolled one")
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: got %v, %v, want mode 0600", fi, err)
	}
	// The enrolment code is spent: it cannot also log in.
	c := testConfig(t, &clock{t: now})
	c.StatePath, c.Secret = path, store.m[SecretName]
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if r := a.Login(owner, good); r.Event != EventReplay {
		t.Errorf("login with the enrolment code: got %q, want replay", r.Event)
	}
	if got := a.Status().RecoveryLeft; got != 3 {
		t.Errorf("recovery left: got %d, want 3", got)
	}
}

// Re-enrolment resets failures, lockout and the lock, and revokes the old
// recovery codes.
func TestEnrollResetsState(t *testing.T) {
	a, clk, c, old := enrolled(t, 2)
	for range 5 {
		a.Login(owner, wrongCode(t, clk.Now()))
		clk.Add(31 * time.Second)
	}
	_ = a.Lock(owner)
	e := confirmed(t, clk.Now())
	store := &memStore{}
	// While the relay holds the state, enrolment refuses and changes
	// nothing: the relay would go on accepting the old secret.
	before, _ := os.ReadFile(c.StatePath)
	if _, err := e.Save(store, c.StatePath, 2); !errors.Is(err, ErrStateInUse) {
		t.Fatalf("save while the relay runs: got %v, want ErrStateInUse", err)
	}
	if after, _ := os.ReadFile(c.StatePath); len(store.m) != 0 || string(after) != string(before) {
		t.Fatal("a refused enrolment still changed the secret or the state")
	}
	a.Close()
	if _, err := e.Save(store, c.StatePath, 2); err != nil {
		t.Fatal(err)
	}
	c.Secret = store.m[SecretName]
	b := reopen(t, a, c)
	st := b.Status()
	if st.Failures != 0 || !st.LockedUntil.IsZero() || st.Locked || st.RecoveryLeft != 2 {
		t.Errorf("after re-enrolment: got %+v, want a clean state with 2 recovery codes", st)
	}
	if r := b.Login(owner, old[0]); r.OK {
		t.Error("old recovery code after re-enrolment: got ok, want refused")
	}
}

func TestEnrollSaveFailures(t *testing.T) {
	e := confirmed(t, t0)
	dir := t.TempDir()
	if _, err := e.Save(&memStore{setErr: errors.New("keyring locked")}, dir+"/auth.json", 2); err == nil || !strings.Contains(err.Error(), "keyring locked") {
		t.Errorf("store refuses: got %v, want its error", err)
	}
	if _, err := os.Stat(dir + "/auth.json"); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused secret still reset the state")
	}
	for _, n := range []int{-1, maxRecovery + 1} {
		if _, err := e.Save(&memStore{}, dir+"/auth.json", n); err == nil {
			t.Errorf("%d recovery codes: got nil, want an error", n)
		}
	}
	// A state file that cannot be replaced (here a directory is in its
	// way): the secret is saved, and the error says what to do.
	if err := os.Mkdir(dir+"/dir", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir+"/dir/auth.json", 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := e.Save(&memStore{}, dir+"/dir/auth.json", 2)
	if err == nil || !errors.Is(err, ErrResetIncomplete) {
		t.Errorf("unwritable state: got %v, want ErrResetIncomplete (the CLI hints to re-run enrolment)", err)
	}
	// A state directory that cannot even be created: nothing is saved.
	if err := os.WriteFile(dir+"/file", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	store := &memStore{}
	if _, err = e.Save(store, dir+"/file/auth.json", 2); err == nil || len(store.m) != 0 {
		t.Errorf("state directory is a file: got %v and %d secrets stored, want an error and none", err, len(store.m))
	}
}

func TestLoadSecret(t *testing.T) {
	if _, err := LoadSecret(&memStore{}); err == nil || !errors.Is(err, errNotFound) || !errors.Is(err, ErrNoSecret) {
		t.Errorf("missing: got %v, want the store's not-found error and ErrNoSecret", err)
	}
	s := &memStore{m: map[string][]byte{SecretName: []byte(testSecret + "\n")}}
	if b, err := LoadSecret(s); err != nil || string(b) != testSecret+"\n" {
		t.Errorf("present: got %v, want the stored value", err)
	}
	s.m[SecretName] = []byte("not base32 at all")
	if _, err := LoadSecret(s); err == nil {
		t.Error("invalid: got nil, want an error")
	}
}

// Every path that handles a code, a secret or a recovery code is searched
// for them: results, errors, status, state file.
func TestNoSecretsInOutputs(t *testing.T) {
	a, clk, c, codes := enrolled(t, 4)
	secret := string(c.Secret)
	var seen []string
	var needles = []string{secret}
	for _, rc := range codes {
		n, _ := normalizeRecovery(rc)
		needles = append(needles, rc, n)
	}
	record := func(v any) { seen = append(seen, fmt.Sprintf("%+v|%v", v, v)) }

	valid := validCode(t, a, 0)
	tried := []string{valid, validCode(t, a, -5), "99999", codes[0], codes[0], codes[1], "garbage " + secret, secret}
	needles = append(needles, valid, validCode(t, a, -5))
	for _, code := range tried {
		clk.Add(31 * time.Second)
		r := a.Login(owner, code)
		record(r)
		if r.Err != nil {
			record(r.Err.Error())
		}
		clk.Add(31 * time.Second)
		record(a.StepUp(owner, code))
	}
	// The replay and lockout paths, too.
	for range 6 {
		record(a.Login(owner, valid))
	}
	record(a.Status())
	clk.Add(48 * time.Hour)
	a.save = func(string, *state) error { return errors.New("disk full") }
	r := a.Login(owner, validCode(t, a, 0))
	record(r)
	record(r.Err.Error())
	a.save = saveState

	e, _ := Enroll("relay", "owner")
	needles = append(needles, e.secret)
	record(e.Confirm("000000", clk.Now()))
	record(e.Confirm(secret, clk.Now()))
	_, err := e.Save(&memStore{}, c.StatePath, 1)
	record(err)
	bad := c
	bad.Secret = []byte(secret[:20] + "!!")
	_, err = New(bad)
	record(err)
	_, err = LoadSecret(&memStore{m: map[string][]byte{SecretName: []byte(secret[:20])}})
	record(err)

	seen = append(seen, readFile(t, c.StatePath))
	for i, s := range seen {
		assertNoSecret(t, fmt.Sprintf("output %d", i), s, needles...)
	}
}
