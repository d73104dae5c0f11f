package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/relaychat/relay/internal/chatfmt"
)

// signedLog is a log with a checkpoint key and a few records; it returns
// the log (open), its directory, K0 and the public key.
func signedLog(t testing.TB, o Options) (dir string, k0 []byte, l *Log, pub string) {
	t.Helper()
	dir, k0, l = newLog(t, o)
	pub, err := ReadPublicKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, k0, l, pub
}

// TestSignedCheckpoint: a checkpoint is a C2SP signed note of the head's
// seq and h, signed with Ed25519 by the key init made, and opens with the
// public key init stored.
func TestSignedCheckpoint(t *testing.T) {
	dir, _, l, pub := signedLog(t, Options{})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	head := mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != head.Seq || cp.HashHex() != head.Hash {
		t.Fatalf("got checkpoint %v, want the head %+v", cp, head)
	}
	// The format, by hand: origin, count, base64 hash, blank line, one
	// signature line by the origin's key.
	lines := strings.Split(string(cp.Note), "\n")
	hv, _ := base64.StdEncoding.DecodeString(lines[2])
	if len(lines) != 6 || lines[0] != cp.Origin || lines[1] != "3" || !bytes.Equal(hv, cp.Hash[:]) || lines[3] != "" ||
		!strings.HasPrefix(lines[4], "— "+cp.Origin+" ") || lines[5] != "" {
		t.Fatalf("got note %q, want origin, 3, base64 h, blank, one signature line", cp.Note)
	}
	host, _ := os.Hostname()
	if !regexp.MustCompile(`^[a-z0-9._-]+/relay-audit/[0-9a-f]{8}$`).MatchString(cp.Origin) || (host != "" && !strings.HasPrefix(cp.Origin, strings.ToLower(host))) {
		t.Fatalf("got origin %q, want <host>/relay-audit/<8 hex>", cp.Origin)
	}
	sig, _ := base64.StdEncoding.DecodeString(strings.Fields(lines[4])[2])
	vk := strings.SplitN(pub, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(vk[2])
	if len(sig) != 4+ed25519.SignatureSize || raw[0] != 1 || !ed25519.Verify(ed25519.PublicKey(raw[1:]), []byte(strings.Join(lines[:3], "\n")+"\n"), sig[4:]) {
		t.Fatal("the signature is not Ed25519 over the note text by the stored public key")
	}
	got, err := OpenCheckpoint(cp.Note, pub)
	if err != nil || got.Seq != cp.Seq || got.Hash != cp.Hash || got.Origin != cp.Origin {
		t.Fatalf("OpenCheckpoint: got %v, %v; want %v", got, err, cp)
	}
	// The read-only signer (for a witness while the daemon runs) signs the
	// same head.
	lc, err := LatestCheckpoint(dir)
	if err != nil || lc.Seq != cp.Seq || lc.Hash != cp.Hash {
		t.Fatalf("LatestCheckpoint: got %v, %v; want %v", lc, err, cp)
	}
	if fi, err := os.Stat(filepath.Join(dir, CheckpointKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint key file: %v, %v; want mode 0600", fi, err)
	}
}

// TestOpenCheckpointRefuses: each way a note can be wrong is refused, with
// a reason that says which.
func TestOpenCheckpointRefuses(t *testing.T) {
	dir, _, l, pub := signedLog(t, Options{})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	skeyB, _ := os.ReadFile(filepath.Join(dir, CheckpointKeyFile))
	own, err := note.NewSigner(strings.TrimSpace(string(skeyB)))
	if err != nil {
		t.Fatal(err)
	}
	otherSkey, _, _ := note.GenerateKey(rand.Reader, cp.Origin)
	other, _ := note.NewSigner(otherSkey)
	sign := func(s note.Signer, text string) []byte {
		b, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	h64 := base64.StdEncoding.EncodeToString(cp.Hash[:])
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"swapped key, same origin", sign(other, checkpointBody(cp.Origin, cp.Seq, &cp.Hash)), "not signed by"},
		{"edited count", bytes.Replace(cp.Note, []byte("\n2\n"), []byte("\n3\n"), 1), "does not verify"},
		{"another origin, own key", sign(own, "evil/relay-audit/00000000\n2\n"+h64+"\n"), "names origin"},
		{"extension line", sign(own, cp.Origin+"\n2\n"+h64+"\nextra\n"), "one per line"},
		{"leading zero", sign(own, cp.Origin+"\n02\n"+h64+"\n"), "positive decimal"},
		{"zero count", sign(own, cp.Origin+"\n0\n"+h64+"\n"), "positive decimal"},
		{"short hash", sign(own, cp.Origin+"\n2\n"+base64.StdEncoding.EncodeToString(cp.Hash[:31])+"\n"), "32 bytes"},
		{"unpadded hash", sign(own, cp.Origin+"\n2\n"+strings.TrimRight(h64, "=")+"\n"), "32 bytes"},
		{"not a note", []byte("audit checkpoint seq=2 mac=0123456789abcdef"), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenCheckpoint(tt.msg, pub)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := OpenCheckpoint(cp.Note, "garbage"); err == nil {
		t.Fatal("opened with a malformed public key")
	}
	if _, err := ParsePublicKey(string(skeyB)); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("got %v for the private key, want a refusal naming it", err)
	}
}

// TestCheckpointMessage: the chat message carries the legacy line and the
// signed note, both readable back from what the phone shows (the text
// after Telegram parses the HTML), also when copied with CRLFs and
// indentation.
func TestCheckpointMessage(t *testing.T) {
	_, _, l, pub := signedLog(t, Options{})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	msg := l.CheckpointMessage()
	if !strings.Contains(msg, "<pre>") || strings.Count(msg, "<pre>") != 1 || !strings.HasSuffix(msg, "</pre>") {
		t.Fatalf("got %q, want the note in one <pre> block", msg)
	}
	shown := html.UnescapeString(strings.NewReplacer("<pre>", "", "</pre>", "", "<code>", "", "</code>", "").Replace(msg))
	head, err := ParseCheckpoint(shown)
	if err != nil || head.Seq != l.Head().Seq || !strings.HasPrefix(l.Head().MAC, head.MAC) {
		t.Fatalf("legacy checkpoint from %q: %+v, %v", shown, head, err)
	}
	for _, text := range []string{shown, strings.ReplaceAll(shown, "\n", "\r\n"), "  " + strings.ReplaceAll(shown, "\n", "  \n  ")} {
		notes := FindCheckpoints("forwarded from relay:\n" + text + "\nmore text")
		if len(notes) != 1 {
			t.Fatalf("found %d notes in %q, want 1", len(notes), text)
		}
		cp, err := OpenCheckpoint(notes[0], pub)
		if err != nil || cp.Seq != head.Seq {
			t.Fatalf("open the found note: %v, %v", cp, err)
		}
	}
	if !IsCheckpointText(shown) {
		t.Fatal("IsCheckpointText does not recognise relay's own message")
	}
	// Without a key, the legacy line alone.
	os.Remove(filepath.Join(l.dir, CheckpointKeyFile))
	l.Close()
	l2, err := Open(l.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if m := l2.CheckpointMessage(); strings.Contains(m, "<pre>") || !strings.Contains(m, "audit checkpoint seq=") {
		t.Fatalf("got %q without a key, want the legacy line alone", m)
	}
	if _, err := l2.Checkpoint(); !errors.Is(err, ErrNoCheckpointKey) {
		t.Fatalf("got %v, want ErrNoCheckpointKey (the CLI hints how to make one)", err)
	}
}

// TestIsCheckpointText: what relay notify may not send.
func TestIsCheckpointText(t *testing.T) {
	_, _, l, _ := signedLog(t, Options{})
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	cp, _ := l.Checkpoint()
	tests := []struct {
		text string
		want bool
	}{
		{string(cp.Note), true},
		{"look: " + strings.ReplaceAll(string(cp.Note), "— ", "\u2013 "), true}, // en dash
		{"audit checkpoint seq=5 mac=0123456789abcdef", true},
		{"AUDIT CHECKPOINT", true},
		{"audit\u200bcheck-point", true},
		{"audit\x00checkpoint", true},
		{"seq=5\x1b[0m mac=0123456789abcdef", true}, // as the chat shows it
		{"seq = 5, mac = 0123456789ABCDEF", true},
		{"x\n\n\u2014 someone " + strings.Repeat("A", 60), true},
		{"backup finished: 3 files, checkpoint 7 written", false},
		{"disk 91% full — consider cleanup", false},
		{"sha256 " + strings.Repeat("ab", 32), false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsCheckpointText(tt.text); got != tt.want {
			t.Errorf("IsCheckpointText(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

// FuzzIsCheckpointText holds the recognizer to its contract: whatever
// relay's checkpoint readers accept, in the text or in what the chat shows
// of it, it recognises.
func FuzzIsCheckpointText(f *testing.F) {
	for _, s := range []string{
		"audit checkpoint seq=1 mac=0123456789abcdef",
		"o/relay-audit/00\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n\n— o/relay-audit/00 AAAA\n",
		"hello\x1b]0;x\x07 world", "seq=1\x1b[m mac=abcdefabcdefabcd", "a\r\nb\r\n\r\n— c d\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		shown := html.UnescapeString(chatfmt.Escape(s))
		for _, v := range []string{s, shown} {
			_, err := ParseCheckpoint(v)
			if (err == nil || len(FindCheckpoints(v)) > 0) && !IsCheckpointText(s) {
				t.Fatalf("IsCheckpointText(%q) = false, but a reader takes %q for a checkpoint", s, v)
			}
		}
	})
}

// FuzzOpenCheckpoint: hostile notes (from a pasted chat, or a host that
// answers a witness) never crash the reader, and whatever opens is a
// canonical checkpoint that FindCheckpoints finds again in its own text.
func FuzzOpenCheckpoint(f *testing.F) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "host/relay-audit/0badcafe")
	s, _ := note.NewSigner(skey)
	var h [sha256.Size]byte
	binary.BigEndian.PutUint64(h[:], 42)
	good, _ := note.Sign(&note.Note{Text: checkpointBody("host/relay-audit/0badcafe", 42, &h)}, s)
	f.Add(good, false)
	f.Add(good, true)
	f.Add([]byte("x\n1\nAAAA\n\n— x AAAA\n"), false)
	f.Fuzz(func(t *testing.T, msg []byte, viaText bool) {
		if viaText {
			notes := FindCheckpoints(string(msg))
			if len(notes) == 0 {
				return
			}
			msg = notes[0]
		}
		cp, err := OpenCheckpoint(msg, vkey)
		if err != nil {
			return
		}
		if string(cp.Note) != string(msg) {
			t.Fatal("Note is not the message opened")
		}
		if want := checkpointBody(cp.Origin, cp.Seq, &cp.Hash); !strings.HasPrefix(string(msg), want+"\n") {
			t.Fatalf("opened %q, which is not the canonical body %q", msg, want)
		}
		if found := FindCheckpoints(string(msg)); len(found) != 1 || !bytes.Equal(found[0], msg) {
			t.Fatalf("FindCheckpoints does not find %q in itself", msg)
		}
	})
}

// TestCheckpointKeyNeverRecorded: the private checkpoint key, like K0,
// never reaches a record.
func TestCheckpointKeyNeverRecorded(t *testing.T) {
	dir, _, l, _ := signedLog(t, Options{})
	b, _ := os.ReadFile(filepath.Join(dir, CheckpointKeyFile))
	skey := strings.TrimSpace(string(b))
	raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(skey, "+", 5)[4])
	if len(raw) != 33 {
		t.Fatalf("got a %d-byte key, want the algorithm byte and a 32-byte seed", len(raw))
	}
	for _, s := range []string{skey, base64.StdEncoding.EncodeToString(raw[1:]), string(raw[1:])} {
		if _, err := l.Append(Record{Type: "notify", Outcome: "requested", Detail: "x " + s + " y"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, f := range Files(dir) {
		data, _ := os.ReadFile(f)
		for i, form := range [][]byte{[]byte(skey[len("PRIVATE+KEY+"):]), raw[1:], []byte(base64.StdEncoding.EncodeToString(raw[1:]))} {
			if bytes.Contains(data, form) {
				t.Fatalf("the checkpoint key (form %d) reached the log:\n%s", i, data)
			}
		}
	}
}

// TestAddCheckpointKey: a log made before checkpoint keys gets one, once;
// replacing it takes force.
func TestAddCheckpointKey(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "v1log"))
	pub, err := AddCheckpointKey(dir, "test/relay-audit/01020304", nil, false)
	if err != nil || !strings.HasPrefix(pub, "test/relay-audit/01020304+") {
		t.Fatalf("got %q, %v", pub, err)
	}
	if _, err := AddCheckpointKey(dir, "", nil, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("got %v for a second key, want a refusal naming --force", err)
	}
	if _, err := AddCheckpointKey(dir, "has space", nil, true); err == nil {
		t.Fatal("accepted an origin with a space")
	}
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Checkpoint(); err == nil || !strings.Contains(err.Error(), "format-1") {
		t.Fatalf("got %v on a format-1 head, want a refusal", err)
	}
	mustAppend(t, l, Record{Type: "start", Outcome: "ok"})
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(cp.Note, pub); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesLooseCheckpointKey: a checkpoint key others can read is
// a leaked key; the log does not open with it.
func TestOpenRefusesLooseCheckpointKey(t *testing.T) {
	dir, _, l, _ := signedLog(t, Options{})
	l.Close()
	os.Chmod(filepath.Join(dir, CheckpointKeyFile), 0o644)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v, want a refusal naming chmod 600", err)
	}
	if _, err := LatestCheckpoint(dir); err == nil {
		t.Fatal("signed with a loose key")
	}
}
