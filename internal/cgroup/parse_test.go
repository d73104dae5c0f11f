package cgroup

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A hybrid host: cgroup v2 at /sys/fs/cgroup/unified, controllers on v1.
const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw
`

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       mount
	}{
		{"plain", "41 31 0:38 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate",
			mount{root: "/", point: "/sys/fs/cgroup", fstype: "cgroup2"}},
		{"optional fields", "41 31 0:38 / /sys/fs/cgroup rw shared:9 master:2 propagate_from:3 - cgroup2 none rw",
			mount{root: "/", point: "/sys/fs/cgroup", fstype: "cgroup2"}},
		// A hostile name that spells a whole separator and fstype is one
		// escaped field: the mount stays a tmpfs.
		{"hostile tmpfs", `50 27 0:50 / /media/x\040-\040cgroup2\040cgroup2\040rw rw - tmpfs tmpfs rw`,
			mount{root: "/", point: "/media/x - cgroup2 cgroup2 rw", fstype: "tmpfs"}},
		{"escapes", `52 27 0:38 /a\134b\011c /mnt/c\040g\012x rw - cgroup2 cgroup2 rw`,
			mount{root: "/a\\b\tc", point: "/mnt/c g\nx", fstype: "cgroup2"}},
		{"no source or options after fstype", "41 31 0:38 / /x rw - cgroup2 c",
			mount{root: "/", point: "/x", fstype: "cgroup2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := parseMountinfo(tc.line + "\n")
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0] != tc.want {
				t.Fatalf("got %+v, want %+v", ms, tc.want)
			}
		})
	}
	for _, bad := range []string{
		"", "41 31 0:38 / /x rw", "41 31 0:38 / /x rw -", "41 31 0:38 / /x rw - cgroup2",
		`41 31 0:38 / /x\04 rw - cgroup2 c r`, `41 31 0:38 / /x\400 rw - cgroup2 c r`, `41 31 0:38 / /x\q12 rw - cgroup2 c r`,
		// The separator may not stand in for the options field.
		"41 31 0:38 / - cgroup2 cgroup2 rw",
	} {
		if ms, err := parseMountinfo(bad); err == nil {
			t.Errorf("parseMountinfo(%q): got %+v, want an error", bad, ms)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got, err := parseProcCgroup("9:name=systemd:/\n4:memory:/process_api/f29\n2:cpu,cpuacct:/\n0::/system.slice/relay.service\n")
	if err != nil {
		t.Fatal(err)
	}
	want := procCgroup{path: "/system.slice/relay.service", v1: []string{"memory", "cpu", "cpuacct"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got, err := parseProcCgroup("0::/a:b/c\n"); err != nil || got.path != "/a:b/c" {
		t.Fatalf("colon in path: got %+v, %v", got, err)
	}
	for _, bad := range []string{
		"",                       // no v2 line
		"4:memory:/\n",           // v1 only
		"0::/a\n0::/b\n",         // two v2 lines
		"0::/../..\n",            // outside the cgroup namespace
		"0::/a/../../b\n",        // not clean
		"0::relative\n",          // not absolute
		"0:memory:/\n",           // controllers on the v2 line
		"x::/\n",                 // bad hierarchy id
		"0:/\n",                  // missing field
		"0::/ok\n0::/ok\n",       // a second v2 line, however harmless
		"0::/a//b\n",             // not clean
		"0::/a/\n",               // not clean
		"0::/a/.\n",              // not clean
		"0::/..\n",               // outside
		"4:memory:/\nno colon\n", // malformed
	} {
		if got, err := parseProcCgroup(bad); err == nil {
			t.Errorf("parseProcCgroup(%q): got %+v, want an error", bad, got)
		}
	}
}

func TestCandidates(t *testing.T) {
	ms, err := parseMountinfo(hybridMountinfo + "60 27 0:38 /system.slice /run/cg rw - cgroup2 cgroup2 rw\n")
	if err != nil {
		t.Fatal(err)
	}
	got := candidates("/system.slice/relay.service", ms)
	want := []candidate{
		{dir: "/sys/fs/cgroup/unified/system.slice/relay.service", point: "/sys/fs/cgroup/unified"},
		{dir: "/run/cg/relay.service", point: "/run/cg"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A mount of a sibling whose name shares a prefix is not an ancestor.
	ms, _ = parseMountinfo("60 27 0:38 /system.slice/relay /run/cg rw - cgroup2 cgroup2 rw\n")
	if got := candidates("/system.slice/relay.service", ms); len(got) != 0 {
		t.Fatalf("prefix sibling: got %+v, want none", got)
	}
}

// TestMountinfoHostileNames mounts a real cgroup2 and a real tmpfs at
// directories whose names imitate mountinfo syntax, and finds them in this
// process's own mountinfo as what they are.
func TestMountinfoHostileNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	base := t.TempDir()
	cg := filepath.Join(base, `cg \x - tmpfs tmpfs rw`)
	fake := filepath.Join(base, "fake - cgroup2 cgroup2 rw\tx")
	for _, m := range []struct{ dir, fstype string }{{cg, "cgroup2"}, {fake, "tmpfs"}} {
		if err := os.Mkdir(m.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("none", m.dir, m.fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			t.Skipf("mount %s: %v", m.fstype, err)
		}
		t.Cleanup(func() { unix.Unmount(m.dir, unix.MNT_DETACH) })
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMountinfo(string(b))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, m := range ms {
		if strings.HasPrefix(m.point, base+"/") {
			found[m.point] = m.fstype
		}
	}
	if want := map[string]string{cg: "cgroup2", fake: "tmpfs"}; !reflect.DeepEqual(found, want) {
		t.Fatalf("got %q, want %q", found, want)
	}
	// The real cgroup2 is usable where the parser says it is.
	if !isCgroup2(cg) || isCgroup2(fake) {
		t.Fatalf("statfs disagrees: %s cgroup2=%v, %s cgroup2=%v", cg, isCgroup2(cg), fake, isCgroup2(fake))
	}
}

// FuzzParseMountinfo: the parser never panics; what it accepts survives
// the kernel's escaping and re-parsing; and a candidate directory for any
// cgroup path is always inside its cgroup2 mount.
func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo, "9:name=systemd:/\n0::/system.slice/relay.service\n")
	f.Fuzz(func(t *testing.T, mountinfo, proc string) {
		ms, err := parseMountinfo(mountinfo)
		if err != nil {
			return
		}
		var lines []string
		for _, m := range ms {
			lines = append(lines, "1 2 0:3 "+escape(m.root)+" "+escape(m.point)+" rw - "+escape(m.fstype)+" src rw")
		}
		again, err := parseMountinfo(strings.Join(lines, "\n"))
		if err != nil || !slices.Equal(again, ms) {
			t.Fatalf("round trip: got %+v (%v), want %+v", again, err, ms)
		}
		pc, err := parseProcCgroup(proc)
		if err != nil {
			return
		}
		for _, c := range candidates(pc.path, ms) {
			if c.dir != c.point && !strings.HasPrefix(c.dir, strings.TrimSuffix(c.point, "/")+"/") {
				t.Fatalf("candidate %q is outside its mount %q", c.dir, c.point)
			}
			if path.Clean(c.dir) != c.dir {
				t.Fatalf("candidate %q is not clean", c.dir)
			}
		}
	})
}

// FuzzParseProcCgroup: the parser never panics, and a path it accepts is
// absolute, clean, one line, and inside the cgroup namespace.
func FuzzParseProcCgroup(f *testing.F) {
	f.Add("9:name=systemd:/\n4:memory:/x\n0::/system.slice/relay.service\n")
	f.Fuzz(func(t *testing.T, data string) {
		pc, err := parseProcCgroup(data)
		if err != nil {
			return
		}
		p := pc.path
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.Contains(p, "\n") || slices.Contains(strings.Split(p, "/"), "..") {
			t.Fatalf("accepted path %q", p)
		}
	})
}

func TestSeedCorpus(t *testing.T) {
	for _, name := range []string{"FuzzParseMountinfo", "FuzzParseProcCgroup"} {
		ents, err := os.ReadDir(filepath.Join("testdata/fuzz", name))
		if err != nil || len(ents) == 0 {
			t.Errorf("seed corpus %s: got %d files (%v), want some", name, len(ents), err)
		}
	}
}
