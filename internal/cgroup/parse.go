package cgroup

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procCgroup is what /proc/self/cgroup says about a process.
type procCgroup struct {
	// path is the process's cgroup v2 path (the "0::" line), relative to
	// its cgroup namespace: absolute, clean and without "..".
	path string
	// v1 holds the controllers bound to cgroup v1 hierarchies, which the
	// kernel then withholds from cgroup v2.
	v1 []string
}

// parseProcCgroup parses /proc/PID/cgroup: "hierarchy-ID:controllers:path"
// lines. The kernel refuses '\n' in cgroup names, so lines are lines; the
// path may hold ':' and is the rest of the line.
func parseProcCgroup(data string) (procCgroup, error) {
	var pc procCgroup
	seen := false
	for _, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return procCgroup{}, fmt.Errorf("malformed line %q", line)
		}
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return procCgroup{}, fmt.Errorf("malformed hierarchy id in %q", line)
		}
		if id != "0" {
			for _, c := range strings.Split(ctrls, ",") {
				if c != "" && !strings.HasPrefix(c, "name=") {
					pc.v1 = append(pc.v1, c)
				}
			}
			continue
		}
		if seen || ctrls != "" {
			return procCgroup{}, fmt.Errorf("unexpected cgroup v2 line %q", line)
		}
		seen = true
		// A cgroup outside the reader's cgroup namespace shows as
		// "/../..": it cannot be reached from here.
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/.." || strings.HasPrefix(p, "/../") {
			return procCgroup{}, fmt.Errorf("cgroup v2 path %q is outside this cgroup namespace or not clean", p)
		}
		pc.path = p
	}
	if !seen {
		return procCgroup{}, errNoV2
	}
	return pc, nil
}

var errNoV2 = errors.New("cgroup v2 is not mounted (no 0:: line in /proc/self/cgroup)")

// mount is one line of /proc/PID/mountinfo, unescaped.
type mount struct {
	root   string // the mount's root within its filesystem
	point  string // where it is mounted
	fstype string
}

// parseMountinfo parses /proc/PID/mountinfo (proc(5)): "id parent maj:min
// root mountpoint options [optional...] - fstype source superoptions". The
// kernel escapes space, tab, newline and backslash in every field as \ooo,
// so splitting on single spaces is exact and a "-" field alone is the
// separator: a mount point named "x - cgroup2" arrives as "x\040-\040cgroup2".
func parseMountinfo(data string) ([]mount, error) {
	var ms []mount
	for _, line := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		f := strings.Split(line, " ")
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		root, err1 := unescape(f[3])
		point, err2 := unescape(f[4])
		fstype, err3 := unescape(f[sep+1])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("mountinfo line %q: %w", line, err)
		}
		ms = append(ms, mount{root: root, point: point, fstype: fstype})
	}
	return ms, nil
}

// unescape undoes the kernel's \ooo octal escapes. Anything else after a
// backslash is an error, since the kernel escapes the backslash itself.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		var n int
		for _, d := range []byte(s[i+1 : i+4]) {
			if d < '0' || d > '7' {
				return "", fmt.Errorf("bad escape in %q", s)
			}
			n = n*8 + int(d-'0')
		}
		if n > 0xff {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(n))
		i += 3
	}
	return b.String(), nil
}

// escape is the kernel's mangling of a mountinfo field, for tests.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// candidate is a directory where a cgroup v2 path may be found, on the
// cgroup2 mount at point.
type candidate struct{ dir, point string }

// candidates lists, for each cgroup2 mount whose root is cg or an ancestor
// of it, the mount point joined with the rest of cg. The caller proves which
// one is really cg (by finding its own pid in cgroup.procs), since a later
// mount may hide an earlier one.
func candidates(cg string, ms []mount) []candidate {
	var cs []candidate
	for _, m := range ms {
		if m.fstype != "cgroup2" || !strings.HasPrefix(m.point, "/") {
			continue
		}
		var rel string
		switch {
		case m.root == "/":
			rel = cg
		case cg == m.root:
			rel = "/"
		case strings.HasPrefix(cg, m.root+"/"):
			rel = strings.TrimPrefix(cg, m.root)
		default:
			continue
		}
		cs = append(cs, candidate{dir: path.Join(m.point, rel), point: path.Clean(m.point)})
	}
	return cs
}

// isCgroup2 reports whether dir is on a cgroup v2 filesystem, whatever
// mountinfo said.
func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
