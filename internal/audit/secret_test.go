package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every string-carrying field of Record, filled with a secret in turn: the
// file must never contain it, in any common encoding.
func TestSecretsNeverRecorded(t *testing.T) {
	token := "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bk"
	totp := []byte("JBSWY3DPEHPK3PXP")
	k0raw := bytes.Repeat([]byte{0xa5, 0x17, 0x3c}, 11)[:32]
	secrets := [][]byte{[]byte(token), totp, k0raw}
	forms := func(s []byte) []string {
		return []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s)}
	}

	dir, k0, l := newLog(t, Options{})
	for _, s := range secrets {
		l.ForbidSecret(s)
	}
	rt := reflect.TypeOf(Record{})
	for _, sec := range secrets {
		for _, form := range forms(sec) {
			for i := 0; i < rt.NumField(); i++ {
				f := rt.Field(i)
				if f.Name == "Type" || f.Name == "TornSHA256" {
					continue // validated or writer-only: Append refuses them
				}
				r := Record{Type: "request"}
				v := reflect.ValueOf(&r).Elem().Field(i)
				embedded := "x " + form + " y"
				switch v.Kind() {
				case reflect.String:
					v.SetString(embedded)
				case reflect.Slice:
					v.Set(reflect.ValueOf([]string{"/bin/echo", embedded}))
				case reflect.Map:
					v.Set(reflect.ValueOf(map[string]string{"k": embedded, embedded: "v"}))
				default:
					continue
				}
				h, err := l.Append(r)
				if err != nil {
					t.Fatalf("field %s: %v", f.Name, err)
				}
				_ = h
			}
		}
	}
	if _, err := l.Append(Record{Type: "request", Reason: "tok" + token[:3]}); err != nil {
		t.Fatal(err) // a short fragment is fine
	}
	l.Close()
	files, _ := ListFiles(dir)
	for _, f := range append(files, filepath.Join(dir, StateFile)) {
		b, _ := os.ReadFile(f)
		for _, sec := range secrets {
			for _, form := range forms(sec) {
				if bytes.Contains(b, []byte(form)) {
					t.Fatalf("%s contains a registered secret (%d bytes)", filepath.Base(f), len(form))
				}
			}
		}
	}
	lines, _ := Summarize(files, Filter{Types: []string{"request"}}, 0)
	redactedN := 0
	for _, ln := range lines {
		if ln.Redacted {
			redactedN++
		}
	}
	if redactedN < len(lines)-1 {
		t.Fatalf("got %d of %d records marked redacted, want all but the last", redactedN, len(lines))
	}
	mustVerify(t, dir, k0)
}

func TestAppendErrorsDoNotEchoInput(t *testing.T) {
	_, _, l := newLog(t, Options{})
	secret := "sEcReT-TOKEN-value"
	l.ForbidSecret([]byte(secret))
	for _, r := range []Record{{Type: Kind(secret)}, {Type: "recovery", Reason: secret}, {Type: "request", Reason: strings.Repeat("a", 70000) + secret}} {
		_, err := l.Append(r)
		if err == nil {
			t.Fatalf("got nil for %q..., want an error", r.Type[:4])
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q echoes the secret", err)
		}
	}
}

func TestForbidSecretIgnoresShortValues(t *testing.T) {
	_, _, l := newLog(t, Options{})
	l.ForbidSecret([]byte("ok"))
	h := mustAppend(t, l, Record{Type: "request", Outcome: "ok"})
	if h.Seq != 2 {
		t.Fatalf("got seq %d, want 2", h.Seq)
	}
	lines, _ := Summarize(Files(l.dir), Filter{}, 1)
	if lines[0].Outcome != "ok" || lines[0].Redacted {
		t.Fatalf("got %+v, want outcome ok and nothing redacted", lines[0])
	}
}
