package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/note"

	"github.com/relaychat/relay/internal/atomicfile"
	"github.com/relaychat/relay/internal/chatfmt"
)

// The checkpoint key pair lives beside the log: the private key as the key
// state does (0600, in the 0700 directory), the public key so that tools
// on the host can find it. The public key that proves anything is the
// owner's copy, printed by init: one read from the host is only as good as
// the host.
const (
	CheckpointKeyFile = "checkpoint.key"
	CheckpointPubFile = "checkpoint.pub"
)

// Checkpoint is a signed checkpoint whose signature has been verified: a
// C2SP signed note (c2sp.org/signed-note) whose text is a C2SP checkpoint
// body (c2sp.org/tlog-checkpoint):
//
//	<origin>\n
//	<record count, which is the head's seq>\n
//	<base64 of the head's h>\n
//	\n
//	— <origin> <base64 of key hash and Ed25519 signature>\n
//
// The hash is the head of the log's unkeyed hash chain (format 2), not a
// Merkle tree root: a generic transparency-log witness cannot check
// consistency proofs for it, but anyone holding the records between two
// checkpoints can replay them (Extends).
type Checkpoint struct {
	Origin string
	Seq    uint64
	Hash   [sha256.Size]byte
	// Note is the signed note, exactly as signed.
	Note []byte
}

// HashHex is the checkpoint's hash as it appears in a record's h field.
func (c Checkpoint) HashHex() string { return hex.EncodeToString(c.Hash[:]) }

func (c Checkpoint) String() string {
	return fmt.Sprintf("%s seq=%d h=%.16s", c.Origin, c.Seq, c.HashHex())
}

// checkpointBody is the note text for a head.
func checkpointBody(origin string, seq uint64, h *[sha256.Size]byte) string {
	return origin + "\n" + strconv.FormatUint(seq, 10) + "\n" + base64.StdEncoding.EncodeToString(h[:]) + "\n"
}

// signer signs checkpoints for one log.
type signer struct {
	s    note.Signer
	skey string
}

// loadSigner reads dir's checkpoint key; ErrNoCheckpointKey when there is
// none.
func loadSigner(dir string) (*signer, error) {
	p := filepath.Join(dir, CheckpointKeyFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoCheckpointKey
	}
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint key: %w", err)
	}
	defer clear(b)
	fi, err := os.Stat(p)
	if err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("checkpoint key %s is mode %04o (chmod 600 %s)", p, fi.Mode().Perm(), p)
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		// The error of NewSigner never quotes the key.
		return nil, fmt.Errorf("%w: %s", ErrCheckpointKeyCorrupt, p)
	}
	return &signer{s: s, skey: skey}, nil
}

func (s *signer) sign(seq uint64, h *[sha256.Size]byte) (Checkpoint, error) {
	msg, err := note.Sign(&note.Note{Text: checkpointBody(s.s.Name(), seq, h)}, s.s)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return Checkpoint{Origin: s.s.Name(), Seq: seq, Hash: *h, Note: msg}, nil
}

// DefaultOrigin names a new log: this host, relay, and a random tag that
// tells two logs on one host apart, e.g. "web1/relay-audit/3f9a02c1".
func DefaultOrigin(r io.Reader) (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			return c
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		}
		return '-'
	}, host)
	var tag [4]byte
	if _, err := io.ReadFull(r, tag[:]); err != nil {
		return "", fmt.Errorf("generate the log's origin: %w", err)
	}
	return host + "/relay-audit/" + hex.EncodeToString(tag[:]), nil
}

// validOrigin is the note package's rule for key names, which C2SP asks of
// an origin too: non-empty UTF-8 without spaces or "+". It is also kept
// printable and short, as it is shown in the chat.
func validOrigin(s string) bool {
	if s == "" || len(s) > 200 || strings.Contains(s, "+") {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '—' {
			return false
		}
	}
	return true
}

// AddCheckpointKey makes dir's checkpoint key pair and returns the public
// key. It refuses to replace one unless force: a witness that knows the old
// public key rejects every checkpoint signed with a new one, as it should.
// origin "" means DefaultOrigin; rnd nil means crypto/rand.
func AddCheckpointKey(dir, origin string, rnd io.Reader, force bool) (publicKey string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := checkDir(dir); err != nil {
		return "", fmt.Errorf("checkpoint key: %w", err)
	}
	kp := filepath.Join(dir, CheckpointKeyFile)
	if _, err := os.Stat(kp); err == nil && !force {
		return "", fmt.Errorf("checkpoint key: %s already exists (a new key makes your witness reject every later checkpoint until you give it the new public key; use --force to replace it)", kp)
	}
	if origin == "" {
		if origin, err = DefaultOrigin(rnd); err != nil {
			return "", err
		}
	}
	if !validOrigin(origin) {
		return "", fmt.Errorf("checkpoint key: origin %q must be printable, without spaces or \"+\"", origin)
	}
	skey, vkey, err := note.GenerateKey(rnd, origin)
	if err != nil {
		return "", fmt.Errorf("checkpoint key: generate: %w", err)
	}
	data := []byte(skey + "\n")
	err = atomicfile.WriteFile(kp, data, 0o600)
	clear(data)
	if err != nil {
		return "", fmt.Errorf("checkpoint key: write %s: %w", kp, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, CheckpointPubFile), []byte(vkey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("checkpoint key: write the public key: %w", err)
	}
	return vkey, nil
}

// ReadPublicKey returns the public checkpoint key stored beside the log in
// dir. It is the host's copy: to check a host you do not trust, use the one
// init printed.
func ReadPublicKey(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, CheckpointPubFile))
	if err != nil {
		return "", fmt.Errorf("read the public checkpoint key: %w: %w", ErrPublicKey, err)
	}
	return ParsePublicKey(string(b))
}

// ParsePublicKey checks a public checkpoint key ("<origin>+<hash>+<key>")
// and returns it without surrounding space.
func ParsePublicKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "PRIVATE+KEY") {
		return "", fmt.Errorf("%w: that is the private one", ErrPublicKey)
	}
	v, err := note.NewVerifier(s)
	if err != nil || !validOrigin(v.Name()) {
		return "", fmt.Errorf(`%w: want "<origin>+<8 hex>+<base64>"`, ErrPublicKey)
	}
	return s, nil
}

// OpenCheckpoint verifies a signed checkpoint against publicKey and parses
// it. The note must be signed by that key (other signatures, such as a
// witness's cosignature, are allowed), name the key's origin, and hold
// exactly the three lines of a checkpoint with nothing after them.
func OpenCheckpoint(msg []byte, publicKey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(publicKey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: it does not parse", ErrPublicKey)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	var unv *note.UnverifiedNoteError
	var inv *note.InvalidSignatureError
	switch {
	case errors.As(err, &unv):
		names := make([]string, 0, len(unv.Note.UnverifiedSigs))
		for _, s := range unv.Note.UnverifiedSigs {
			names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return Checkpoint{}, fmt.Errorf("checkpoint not signed by %s+%08x (signed by %s): the checkpoint key was replaced, or this is another log's checkpoint", v.Name(), v.KeyHash(), strings.Join(names, ", "))
	case errors.As(err, &inv):
		return Checkpoint{}, errors.New("checkpoint signature does not verify: the checkpoint was altered")
	case err != nil:
		return Checkpoint{}, fmt.Errorf("malformed signed checkpoint: %v", err)
	}
	c, err := parseCheckpointBody(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint names origin %q but is signed by the key for %q", c.Origin, v.Name())
	}
	c.Note = append([]byte(nil), msg...)
	return c, nil
}

// parseCheckpointBody reads the text of a checkpoint note, strictly: the
// canonical forms only, so that one head has one text.
func parseCheckpointBody(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return c, errors.New("malformed checkpoint: want origin, record count and hash, one per line")
	}
	if !validOrigin(lines[0]) {
		return c, errors.New("malformed checkpoint: bad origin line")
	}
	seq, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || seq == 0 || strconv.FormatUint(seq, 10) != lines[1] {
		return c, errors.New("malformed checkpoint: the record count must be a positive decimal number")
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != sha256.Size || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return c, errors.New("malformed checkpoint: the hash must be 32 bytes in standard base64")
	}
	c.Origin, c.Seq = lines[0], seq
	copy(c.Hash[:], h)
	return c, nil
}

// FindCheckpoints returns every signed note in text, such as chat messages
// pasted or exported together: each a body of three lines, a blank line,
// and the signature lines that begin with "— ". Line ends may be CRLF and
// lines may carry surrounding space, as copies from a phone do. The notes
// are not verified: OpenCheckpoint does that.
func FindCheckpoints(text string) [][]byte {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	var out [][]byte
	for i := 3; i+1 < len(lines); i++ {
		if lines[i] != "" || !strings.HasPrefix(lines[i+1], "— ") {
			continue
		}
		if lines[i-1] == "" || lines[i-2] == "" || lines[i-3] == "" {
			continue
		}
		var b bytes.Buffer
		for _, l := range lines[i-3 : i] {
			b.WriteString(l + "\n")
		}
		b.WriteString("\n")
		j := i + 1
		for ; j < len(lines) && strings.HasPrefix(lines[j], "— "); j++ {
			b.WriteString(lines[j] + "\n")
		}
		out = append(out, b.Bytes())
		i = j - 1
	}
	return out
}

// ReadCheckpoints takes every checkpoint out of text (chat messages pasted
// or exported, any number): the signed ones, opened with publicKey, and
// every legacy "seq=N mac=HEX" (a checkpoint message carries both, for one
// head). A signed note that does not open is an error (a swapped key, or
// a forgery): it is not skipped. With no public key, signed notes are
// left unchecked and counted.
func ReadCheckpoints(text, publicKey string) (signed []Checkpoint, legacy []Head, unchecked int, err error) {
	for i, n := range FindCheckpoints(text) {
		if publicKey == "" {
			unchecked++
			continue
		}
		cp, err := OpenCheckpoint(n, publicKey)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("signed checkpoint %d: %w", i+1, err)
		}
		signed = append(signed, cp)
	}
	for _, m := range checkpointRE().FindAllStringSubmatch(text, -1) {
		seq, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || seq == 0 {
			return nil, nil, 0, errors.New("not a checkpoint: seq must be a positive number")
		}
		legacy = append(legacy, Head{Seq: seq, MAC: m[2]})
	}
	return signed, legacy, unchecked, nil
}

// looksLike are the shapes IsCheckpointText refuses: the heading, the
// legacy "seq=N mac=HEX" in any case and spacing, and a note signature
// line: a dash, a name, and a long base64 token.
var looksLike = []func() *regexp.Regexp{
	lazyre.New(`audit\W*check\W*point`),
	lazyre.New(`seq\W*=\W*[0-9]+\W*mac\W*=\W*[0-9a-f]{8}`),
	lazyre.New(`[\x{2010}-\x{2015}\x{2212}\x{fe58}\x{fe63}\x{ff0d}]\s*\S+\s+[a-z0-9+/]{40,}`),
}

// IsCheckpointText reports whether s could be taken for one of relay's
// checkpoints, as text or as it shows in the chat. The notify path uses it
// to refuse text that is not relay's own checkpoint but would look like
// one: otherwise anyone allowed to use relay notify could put a
// checkpoint of their choosing in the owner's chat.
//
// A true is certain for anything relay's readers accept (ParseCheckpoint,
// FindCheckpoints), for s and for what the chat shows of it
// (chatfmt.Escape drops control characters and escape sequences), and for
// lookalikes: the words "audit checkpoint" in any case and spacing, or a
// signature line made with any dash. Format characters (zero-width space,
// bidi controls) and controls are ignored. FuzzIsCheckpointText holds it to
// that.
func IsCheckpointText(s string) bool {
	shown := html.UnescapeString(chatfmt.Escape(s))
	for _, v := range []string{s, shown} {
		if _, err := ParseCheckpoint(v); err == nil || len(FindCheckpoints(v)) > 0 {
			return true
		}
		n := strings.ToLower(strings.Map(func(r rune) rune {
			if unicode.Is(unicode.Cf, r) || (unicode.IsControl(r) && r != '\n') {
				return -1
			}
			return r
		}, v))
		for _, lazy := range looksLike {
			re := lazy()
			if re.MatchString(n) {
				return true
			}
		}
	}
	return false
}

// Checkpoint signs the current head. It fails when the log has no
// checkpoint key, or when its head is a format-1 record (no h yet: the
// next append makes one).
func (l *Log) Checkpoint() (Checkpoint, error) {
	cp, _, err := l.checkpoint()
	return cp, err
}

// checkpoint signs the current head and returns it with the head it signed.
func (l *Log) checkpoint() (Checkpoint, Head, error) {
	l.mu.Lock()
	head, hashed, h := l.Head(), l.c.hashed, l.c.hash
	l.mu.Unlock()
	switch {
	case l.signer == nil:
		return Checkpoint{}, head, ErrNoCheckpointKey
	case !hashed:
		return Checkpoint{}, head, errors.New("the head is a format-1 record, which has no h: append a record first")
	}
	cp, err := l.signer.sign(head.Seq, &h)
	return cp, head, err
}

// PublicKey is the public checkpoint key stored beside the log, "" if it
// has none.
func (l *Log) PublicKey() string {
	k, err := ReadPublicKey(l.dir)
	if err != nil {
		return ""
	}
	return k
}

// CheckpointMessage is the chat message that carries the current head off
// the host, as Telegram HTML: the legacy line ("audit checkpoint seq=N
// mac=HEX", which verify --checkpoint accepts) and, when the log has a
// checkpoint key, the signed checkpoint of the same head in a <pre> block,
// which a phone copies or forwards whole. Without a key, or before the
// first format-2 record, it is the legacy line alone.
func (l *Log) CheckpointMessage() string {
	cp, head, err := l.checkpoint()
	if err != nil {
		return chatfmt.Checkpoint(head.Checkpoint(), nil)
	}
	return chatfmt.Checkpoint(head.Checkpoint(), cp.Note)
}
