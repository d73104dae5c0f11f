package trampoline

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenPathWalkMatchesOpenat2: the fallback that runs where systemd's
// RestrictSUIDSGID= makes openat2 ENOSYS opens exactly what openat2 with
// RESOLVE_NO_SYMLINKS opens, and refuses exactly what it refuses: a
// symlink in the middle or at the end of the path.
func TestOpenPathWalkMatchesOpenat2(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(filepath.Join(real, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "sub", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(real, "sub", "f"), filepath.Join(real, "flink")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want syscall.Errno
	}{
		{"/", 0},
		{real, 0},
		{filepath.Join(real, "sub", "f"), 0},
		{filepath.Join(real, "sub") + "/", 0},
		{filepath.Join(dir, "link"), syscall.ELOOP},
		{filepath.Join(dir, "link", "sub", "f"), syscall.ELOOP},
		{filepath.Join(real, "flink"), syscall.ELOOP},
		{filepath.Join(real, "missing"), syscall.ENOENT},
		{"/proc/self/exe", syscall.ELOOP},
	} {
		fd, e := openPathWalk(c.path)
		if fd >= 0 {
			syscall.Close(fd)
		}
		if e != c.want {
			t.Errorf("openPathWalk(%q): got errno %v, want %v", c.path, e, c.want)
		}
		fd2, e2 := openPath(c.path)
		if fd2 >= 0 {
			syscall.Close(fd2)
		}
		if e2 != e {
			t.Errorf("%q: openPath (openat2) gives errno %v, the walk %v", c.path, e2, e)
		}
		if e == 0 {
			var a, b syscall.Stat_t
			fa, _ := openPathWalk(c.path)
			fb, _ := openPath(c.path)
			syscall.Fstat(fa, &a)
			syscall.Fstat(fb, &b)
			syscall.Close(fa)
			syscall.Close(fb)
			if a.Ino != b.Ino || a.Dev != b.Dev {
				t.Errorf("%q: the walk opened inode %d, openat2 %d", c.path, a.Ino, b.Ino)
			}
		}
	}
	if _, e := openPathWalk("relative"); e != syscall.EINVAL {
		t.Errorf("relative path: got %v, want EINVAL", e)
	}
}
