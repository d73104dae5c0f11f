package cli

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// unitDirs are where systemd keeps unit files, in its order of precedence.
// Tests replace it.
var unitDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

// relayUnit is the unit deploy/install.sh installs.
const relayUnit = "relay.service"

// unitCredential is a credential that a unit hands its service.
type unitCredential struct {
	file      string // the unit file or drop-in that declares it
	directive string // "LoadCredential" or "LoadCredentialEncrypted"
	path      string // its source; relative or "" means a credential store lookup by name
}

// findCredential reports whether unit, as installed in dirs (the unit file
// that takes precedence, then its drop-ins in name order), loads the
// credential id with LoadCredential= or LoadCredentialEncrypted=. It reads
// only what the relay user may read; it is how relay doctor, run outside
// the unit, knows that a token it cannot see is given to the service.
func findCredential(dirs []string, unit, id string) (unitCredential, bool) {
	var files []string
	for _, d := range dirs {
		p := filepath.Join(d, unit)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
			break
		}
	}
	if len(files) == 0 {
		return unitCredential{}, false
	}
	// Drop-ins from every directory, applied in file-name order; a name in
	// an earlier directory hides the same name in a later one.
	dropins := map[string]string{}
	for _, d := range dirs {
		matches, _ := filepath.Glob(filepath.Join(d, unit+".d", "*.conf"))
		for _, m := range matches {
			if _, seen := dropins[filepath.Base(m)]; !seen {
				dropins[filepath.Base(m)] = m
			}
		}
	}
	names := make([]string, 0, len(dropins))
	for n := range dropins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, dropins[n])
	}

	var found unitCredential
	ok := false
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		section := ""
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			if strings.HasPrefix(line, "[") {
				section = line
				continue
			}
			key, val, isKV := strings.Cut(line, "=")
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if section != "[Service]" || !isKV || (key != "LoadCredential" && key != "LoadCredentialEncrypted") {
				continue
			}
			if val == "" {
				// An empty assignment resets the list, as in systemd.
				ok = false
				continue
			}
			cid, path, _ := strings.Cut(val, ":")
			if cid == id {
				found, ok = unitCredential{file: f, directive: key, path: path}, true
			}
		}
		fh.Close()
	}
	return found, ok
}
