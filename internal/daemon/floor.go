package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/relaychat/relay/internal/atomicfile"
)

// FloorFile is the update_id floor's file name inside the state directory.
const FloorFile = "update-floor.json"

// floorLife is how long a floor holds. Telegram keeps an update for at
// most 24 hours, so nothing handled longer ago can be delivered again; and
// after a week without updates it may start update_id again from a random
// value, which a floor kept for ever would refuse for good.
const floorLife = 24 * time.Hour

// floor is the highest update_id handled, kept across restarts: Telegram
// delivers an update again when its offset was not confirmed (a crash, a
// kill -9, a webhook answer that never arrived), and a button press or a
// stop carries no date for the age rule to catch. It is persisted
// atomically before an update of the owner's can have any effect; the
// strangers' updates in between only move it in memory (handling one of
// those twice is harmless), and Run writes it at shutdown.
type floor struct {
	path string
	now  func() time.Time

	mu sync.Mutex
	id int64     // highest update_id handled; 0 for none
	at time.Time // when it was handled
	// saved is the id on disk.
	saved int64
}

type floorJSON struct {
	Version  int       `json:"version"`
	UpdateID int64     `json:"update_id"`
	Handled  time.Time `json:"handled_at"`
}

// loadFloor reads the floor in stateDir. A missing file is no floor; a
// file that cannot be read is an error, since starting without it would
// reopen exactly the replay it exists to stop.
func loadFloor(stateDir string, now func() time.Time) (*floor, error) {
	f := &floor{path: filepath.Join(stateDir, FloorFile), now: now}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the update_id floor: %w", err)
	}
	var j floorJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil || j.Version != 1 || j.UpdateID < 0 {
		return nil, fmt.Errorf("the update_id floor %s is corrupt (hint: if nothing else is wrong with the state directory, delete that file)", f.path)
	}
	f.id, f.at, f.saved = j.UpdateID, j.Handled, j.UpdateID
	return f, nil
}

// seen reports whether update id was handled already: at or below the
// floor, while the floor holds.
func (f *floor) seen(id int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id > 0 && id <= f.id && f.now().Sub(f.at) < floorLife
}

// advance raises the floor to id, in memory.
func (f *floor) advance(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.id, f.at = id, f.now()
}

// save writes the floor unless the file already holds it.
func (f *floor) save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id == f.saved {
		return nil
	}
	data, err := json.Marshal(floorJSON{Version: 1, UpdateID: f.id, Handled: f.at.UTC()})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(f.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the update_id floor: %w", err)
	}
	f.saved = f.id
	return nil
}
