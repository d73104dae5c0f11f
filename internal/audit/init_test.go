package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type failStore struct{ memStore }

var _ KeyStore = (*failStore)(nil)

func (*failStore) Set(string, []byte) error { return errors.New("keyring locked") }

func TestInit(t *testing.T) {
	t.Run("stores K0 and seals record 1", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a")
		ks := &memStore{}
		k0, err := Init(dir, ks)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ks.Get(KeyName)
		if len(k0) != 32 || string(got) != string(k0) {
			t.Fatalf("got a %d-byte K0, stored %d bytes; want 32 and equal", len(k0), len(got))
		}
		sum := mustVerify(t, dir, k0)
		if sum.Records != 1 {
			t.Fatalf("got %d records, want the init record", sum.Records)
		}
	})
	t.Run("refuses a directory with records, even forced", func(t *testing.T) {
		dir, _, l := newLog(t, Options{})
		l.Close()
		for _, force := range []bool{false, true} {
			if _, err := InitWith(dir, &memStore{}, InitOptions{Force: force}); err == nil || !strings.Contains(err.Error(), "move the directory aside") {
				t.Fatalf("force=%v: got %v, want a refusal", force, err)
			}
		}
	})
	t.Run("refuses a store that holds a key unless forced", func(t *testing.T) {
		ks := &memStore{}
		ks.Set(KeyName, []byte("old key"))
		dir := filepath.Join(t.TempDir(), "a")
		if _, err := Init(dir, ks); err == nil || !strings.Contains(err.Error(), "already holds an audit key") {
			t.Fatalf("got %v, want a refusal", err)
		}
		if _, err := InitWith(dir, ks, InitOptions{Force: true}); err != nil {
			t.Fatalf("got %v with force, want success", err)
		}
	})
	t.Run("nil store keeps K0 off the host", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a")
		k0, err := Init(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		mustVerify(t, dir, k0)
	})
	t.Run("store failure writes nothing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a")
		if _, err := Init(dir, &failStore{}); err == nil {
			t.Fatal("got nil, want the store's error")
		}
		if files, _ := ListFiles(dir); len(files) != 0 {
			t.Fatalf("got %d files, want none", len(files))
		}
		if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
			t.Fatal("a key state was written, want none")
		}
	})
	t.Run("refuses a loose directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a")
		os.Mkdir(dir, 0o755)
		if _, err := Init(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 700") {
			t.Fatalf("got %v, want a refusal naming chmod 700", err)
		}
	})
}
