package audit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/relaychat/relay/internal/lazyre"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// StateFile is the key state's name inside the log directory.
const StateFile = "state.json"

// keyState is the evolving key state: the newest key, K(seq), and where the
// head record, seq, ends. It is the only place a key is written.
type keyState struct {
	Seq  uint64
	Key  []byte // K(Seq), keySize bytes
	MAC  string // head record's mac
	File string // head record's file (base name)
	Size int64  // offset just past the head record in File
}

type stateJSON struct {
	V    int    `json:"v"`
	Seq  uint64 `json:"seq"`
	Key  string `json:"key"`
	MAC  string `json:"mac"`
	File string `json:"file"`
	Size int64  `json:"size"`
}

func (s *keyState) encode() []byte {
	b, _ := json.Marshal(stateJSON{V: 1, Seq: s.Seq, Key: hex.EncodeToString(s.Key), MAC: s.MAC, File: s.File, Size: s.Size})
	return append(b, '\n')
}

func (s *keyState) zero() {
	clear(s.Key)
	s.Key = nil
}

func readState(dir string) (*keyState, error) {
	p := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: key state %s missing (or restore the state file)", ErrNotInitialized, p)
	}
	if err != nil {
		return nil, fmt.Errorf("read audit key state: %w", err)
	}
	defer clear(b)
	var j stateJSON
	if err := json.Unmarshal(b, &j); err != nil || j.V != 1 {
		return nil, fmt.Errorf("%w: %s (restore it from a backup, or start a new log in an empty directory)", ErrStateCorrupt, p)
	}
	k, err := hex.DecodeString(j.Key)
	clear([]byte(j.Key)) // best effort: the string may share no memory
	if err != nil || len(k) != keySize || j.Seq == 0 || len(j.MAC) != macHex || !fileName().MatchString(j.File) || j.Size <= 0 {
		return nil, fmt.Errorf("%w: %s (restore it from a backup, or start a new log in an empty directory)", ErrStateCorrupt, p)
	}
	return &keyState{Seq: j.Seq, Key: k, MAC: j.MAC, File: j.File, Size: j.Size}, nil
}

var (
	fileName    = lazyre.New(`^audit-([0-9]{6,})\.jsonl$`)
	anyFileName = lazyre.New(`^audit-([0-9]{6,})\.jsonl(?:\.zst)?$`)
)

// fileNumber is the number in a record file's name, live or archived.
func fileNumber(name string) (int, bool) {
	m := anyFileName().FindStringSubmatch(filepath.Base(name))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil && n > 0
}

func nameFor(n int) string { return fmt.Sprintf("audit-%06d.jsonl", n) }

// ListFiles returns the record files in dir, oldest first.
func ListFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list audit files: %w (check audit.dir)", err)
	}
	type nf struct {
		n    int
		path string
	}
	var fs []nf
	for _, e := range ents {
		if n, ok := fileNumber(e.Name()); ok && e.Type().IsRegular() && fileName().MatchString(e.Name()) {
			fs = append(fs, nf{n, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].n < fs[j].n })
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.path
	}
	return out, nil
}

// ListArchive returns the archived record files (audit-NNNNNN.jsonl.zst)
// in dir, oldest first; none when dir does not exist.
func ListArchive(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archived audit files: %w", err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := fileNumber(e.Name()); ok && e.Type().IsRegular() && !fileName().MatchString(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return sortFiles(out), nil
}

// Files is ListFiles for callers that treat an unreadable directory as an
// empty log (the chat's /audit N): it returns nil on error.
func Files(dir string) []string {
	fs, err := ListFiles(dir)
	if err != nil {
		return nil
	}
	return fs
}

// sortFiles orders paths by their file number when they all have one, so
// that "verify audit-*.jsonl" follows the chain; other names keep the order
// given.
func sortFiles(files []string) []string {
	out := append([]string(nil), files...)
	for _, f := range out {
		if _, ok := fileNumber(f); !ok {
			return out
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := fileNumber(out[i])
		b, _ := fileNumber(out[j])
		return a < b
	})
	// A file both live and archived (an archive run stopped before it
	// removed the original, which it had verified against the copy): read
	// the live one.
	dedup := make([]string, 0, len(out))
	for i, f := range out {
		if i+1 < len(out) && strings.HasSuffix(f, ArchiveSuffix) && !strings.HasSuffix(out[i+1], ArchiveSuffix) {
			a, _ := fileNumber(f)
			b, _ := fileNumber(out[i+1])
			if a == b {
				continue
			}
		}
		if i > 0 && strings.HasSuffix(f, ArchiveSuffix) && !strings.HasSuffix(out[i-1], ArchiveSuffix) {
			a, _ := fileNumber(f)
			b, _ := fileNumber(out[i-1])
			if a == b {
				continue
			}
		}
		dedup = append(dedup, f)
	}
	return dedup
}
