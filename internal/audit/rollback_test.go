package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaychat/relay/internal/fakebotapi"
)

// host is a relay host for the rollback tests: its audit log, written by
// the real writer, checkpoints sent to the owner's chat through the Bot
// API (the project's fake), and a witness on another machine that holds
// the owner's copy of the public key.
type host struct {
	t       *testing.T
	dir     string
	k0      []byte
	pub     string // the owner's copy, printed by init
	l       *Log
	bot     *fakebotapi.Server
	owner   fakebotapi.User
	witness *WitnessStore
	snap    string // a backup of the directory at the first checkpoint
	msgs    []int  // the checkpoint messages in the chat
}

const rollbackToken = "123456:rollback-test-token"

func newHost(t *testing.T) *host {
	dir, k0, l, pub := signedLog(t, Options{RotateBytes: 2500})
	bot := fakebotapi.New(rollbackToken)
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bot.Close)
	owner := fakebotapi.User{ID: 4242, FirstName: "Owner"}
	bot.SendMessage(owner, fakebotapi.Private(owner), "/start")
	return &host{t: t, dir: dir, k0: k0, pub: pub, l: l, bot: bot, owner: owner, witness: newStore(t, pub)}
}

func (h *host) append(n int, command string) {
	for i := 0; i < n; i++ {
		mustAppend(h.t, h.l, Record{Type: "request", Outcome: "ok", Command: command})
	}
}

// checkpoint sends the daemon's checkpoint message to the chat and
// returns its message ID.
func (h *host) checkpoint() int {
	h.t.Helper()
	var r struct {
		OK     bool `json:"ok"`
		Result struct {
			MessageID int `json:"message_id"`
		} `json:"result"`
	}
	h.botCall("sendMessage", map[string]any{"chat_id": h.owner.ID, "text": h.l.CheckpointMessage(), "parse_mode": "HTML"}, &r)
	return r.Result.MessageID
}

func (h *host) botCall(method string, params map[string]any, out any) {
	h.t.Helper()
	b, _ := json.Marshal(params)
	resp, err := http.Post(h.bot.URL()+"/bot"+rollbackToken+"/"+method, "application/json", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("%s: %s", method, body)
	}
	if out != nil {
		json.Unmarshal(body, out)
	}
}

// deleteMessage is what root on the host can do with the bot token, for
// 48 hours after a message was sent.
func (h *host) deleteMessage(id int) {
	h.botCall("deleteMessage", map[string]any{"chat_id": h.owner.ID, "message_id": id}, nil)
}

// witnessNow is one witness run: the host's newest checkpoint and the
// records it asks for.
func (h *host) witnessNow() error {
	cp, err := LatestCheckpoint(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	_, err = h.witness.Witness(cp.Note, hostFetch(h.t, h.dir))
	return err
}

// chatCheckpoints is what the owner can still collect from the chat: the
// signed checkpoints (opened with their own copy of the key) of the
// messages that were not deleted.
func (h *host) chatCheckpoints() []Checkpoint {
	var out []Checkpoint
	for _, m := range h.bot.Sent() {
		if m.Deleted {
			continue
		}
		for _, n := range FindCheckpoints(m.Text) {
			cp, err := OpenCheckpoint(n, h.pub)
			if err != nil {
				h.t.Fatalf("a checkpoint in the chat does not open: %v", err)
			}
			out = append(out, cp)
		}
	}
	return out
}

// stop is the attacker stopping the daemon.
func (h *host) stop() {
	if err := h.l.Close(); err != nil {
		h.t.Fatal(err)
	}
}

// restart is the daemon starting again on whatever the directory holds.
func (h *host) restart() {
	l, err := Open(h.dir, Options{RotateBytes: 2500})
	if err != nil {
		h.t.Fatalf("the relay does not start on the attacked log: %v", err)
	}
	h.t.Cleanup(func() { l.Close() })
	h.l = l
}

func snapshot(t *testing.T, dir string) string { return copyDir(t, dir) }

func restoreDir(t *testing.T, snap, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	ents, _ = os.ReadDir(snap)
	for _, e := range ents {
		os.WriteFile(filepath.Join(dir, e.Name()), mustRead(t, filepath.Join(snap, e.Name())), 0o600)
	}
}

// TestRollbackAndTailLoss: the attacks the chat checkpoint alone cannot
// stop, each on a real log. Every one is caught by the witness (given the
// checkpoints it witnessed), at the first record that is not what it
// witnessed; verify catches the ones it can without a witness (from the
// key state, or from chat checkpoints that survived) and, where it
// cannot, the test says so: that is the remainder SECURITY.md documents.
func TestRollbackAndTailLoss(t *testing.T) {
	type want struct {
		kind  WitnessKind
		first uint64
		// verify is the reason verify (with K0, the owner's public key,
		// the key state and the chat's surviving checkpoints) reports, ""
		// when it cannot tell.
		verify string
	}
	tests := []struct {
		name   string
		attack func(h *host, a, b uint64) want
	}{
		{"restored backup of files and key state", func(h *host, a, b uint64) want {
			// The backup was taken at the first witnessed checkpoint; the
			// attacker restores it and lets the relay go on.
			h.stop()
			restoreDir(h.t, h.snap, h.dir)
			h.restart()
			h.append(int(b-a)+5, "uptime")
			return want{WitnessFork, a + 1, "does not match signed checkpoint"}
		}},
		{"restored backup, chat checkpoints deleted", func(h *host, a, b uint64) want {
			for _, id := range h.msgs {
				h.deleteMessage(id)
			}
			h.stop()
			restoreDir(h.t, h.snap, h.dir)
			h.restart() // the relay starts on it without a word
			return want{WitnessRollback, a + 1, ""}
		}},
		{"restored backup that went on, chat checkpoints deleted", func(h *host, a, b uint64) want {
			for _, id := range h.msgs {
				h.deleteMessage(id)
			}
			h.stop()
			restoreDir(h.t, h.snap, h.dir)
			h.restart()
			h.append(3, "uptime")
			return want{WitnessFork, a + 1, ""}
		}},
		{"truncated tail after deleting the chat checkpoints", func(h *host, a, b uint64) want {
			for _, id := range h.msgs {
				h.deleteMessage(id)
			}
			h.stop()
			cutAfter(h.t, h.dir, a+2)
			return want{WitnessRollback, a + 3, "truncated: the key state"}
		}},
		{"forked log: another record at the same seq", func(h *host, a, b uint64) want {
			// A copy made now goes on with another record at seq b+1;
			// the witness sees the original's first.
			fork := snapshot(h.t, h.dir)
			h.append(1, "uptime")
			if err := h.witnessNow(); err != nil {
				h.t.Fatal(err)
			}
			h.msgs = append(h.msgs, h.checkpoint())
			h.stop()
			restoreDir(h.t, fork, h.dir)
			h.restart()
			h.append(1, "reboot")
			return want{WitnessFork, b + 1, "two signed checkpoints for seq"}
		}},
		{"forked log: both records in the file", func(h *host, a, b uint64) want {
			h.stop()
			file := Files(h.dir)[len(Files(h.dir))-1]
			lines := readLines(h.t, file)
			lines = lines[:len(lines)-1]
			// Record b again after itself, edited and with its h
			// recomputed: the same seq twice, both well formed.
			n := len(lines)
			dup := reseal(bytes.Replace(lines[n-1], []byte("reboot"), []byte("uptime"), 1), lines[n-2], make([]byte, keySize))
			writeLines(h.t, file, append(lines, dup))
			// verify needs no checkpoint for this one.
			_, err := VerifyDir(h.dir, h.k0, nil)
			wantVerifyError(h.t, err, b, "repeats or goes backwards")
			return want{WitnessFork, b, "two signed checkpoints for seq"}
		}},
		{"swapped checkpoint key after a rewrite with K0", func(h *host, a, b uint64) want {
			// Root read K0 from the secret store and rewrote the log from
			// scratch (here: a new log in its place); the old checkpoint
			// key would betray it, so it makes a new one.
			for _, id := range h.msgs {
				h.deleteMessage(id)
			}
			h.stop()
			restoreDir(h.t, h.snap, h.dir)
			if _, err := AddCheckpointKey(h.dir, h.l.signer.s.Name(), nil, true); err != nil {
				h.t.Fatal(err)
			}
			h.restart()
			h.append(int(b-a)+2, "uptime")
			return want{WitnessBadSignature, 0, "not signed by"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			h.append(5, "uptime")
			if err := h.witnessNow(); err != nil {
				t.Fatal(err)
			}
			a := h.l.Head().Seq
			h.msgs = append(h.msgs, h.checkpoint())
			if err := h.l.Sync(); err != nil {
				t.Fatal(err)
			}
			h.snap = snapshot(t, h.dir)
			h.append(8, "reboot")
			if err := h.witnessNow(); err != nil {
				t.Fatal(err)
			}
			b := h.l.Head().Seq
			h.msgs = append(h.msgs, h.checkpoint())
			if err := h.l.Sync(); err != nil {
				t.Fatal(err)
			}

			w := tt.attack(h, a, b)

			err := h.witnessNow()
			wantWitnessError(t, err, w.kind, w.first)
			if rej, _ := h.witness.Rejected(); len(rej) != 1 || rej[0].Kind != w.kind {
				t.Fatalf("got rejected %+v, want the refused checkpoint kept as evidence", rej)
			}

			// verify, as the owner runs it: K0, their public key, the
			// key state, and every checkpoint the chat still shows plus
			// the host's newest.
			signed := h.chatCheckpoints()
			var verr error
			if newest, err := LatestCheckpoint(h.dir); err != nil {
				t.Fatal(err)
			} else if cp, err := OpenCheckpoint(newest.Note, h.pub); err != nil {
				verr = err
			} else {
				signed = append(signed, cp)
			}
			if verr == nil {
				_, verr = VerifyDirWith(h.dir, VerifyOptions{Key: h.k0, Signed: signed, PublicKey: h.pub})
			}
			switch {
			case w.verify == "" && verr != nil:
				t.Fatalf("verify says %v; the test expected verify not to tell (update the remainder in SECURITY.md if it now can)", verr)
			case w.verify == "":
				t.Logf("verify cannot tell without the witness (documented remainder)")
			case verr == nil || !strings.Contains(verr.Error(), w.verify):
				t.Fatalf("verify says %v, want %q", verr, w.verify)
			}
		})
	}
}

// cutAfter removes, as root would, every record after seq from the log's
// files, leaving whole lines.
func cutAfter(t *testing.T, dir string, seq uint64) {
	t.Helper()
	for _, f := range Files(dir) {
		lines := readLines(t, f)
		var keep [][]byte
		for _, ln := range lines {
			if h, reason := parseHeader(ln); reason == "" && h.seq > seq {
				break
			}
			keep = append(keep, ln)
		}
		if len(bytes.Join(keep, nil)) == 0 {
			os.Remove(f)
			continue
		}
		writeLines(t, f, keep)
	}
}
