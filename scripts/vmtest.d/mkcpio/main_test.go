package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchiveReadByCpio: GNU cpio, an independent reader, lists what the
// spec asked for (types, modes, owners, a device node, a symlink's target)
// and extracts a file's exact bytes, so the kernel's unpacker, which reads
// the same format, gets the same.
func TestArchiveReadByCpio(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("no cpio here to read the archive back (apt-get install cpio)")
	}
	dir := t.TempDir()
	// Odd lengths, so that any padding mistake shifts what follows.
	content := "#!/bin/sh\necho odd\n"
	src := filepath.Join(dir, "init")
	if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := `# a comment line
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /bin 0755 0 0
file /init ` + src + ` 0755 0 0   # trailing comment
slink /bin/sh busybox 0777 0 0
dir /tmp 1777 0 0
file /home/u/x ` + src + ` 0640 64123 64124
`
	var arc bytes.Buffer
	if err := write(&arc, strings.NewReader(spec)); err != nil {
		t.Fatal(err)
	}
	if arc.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", arc.Len())
	}
	cmd := exec.Command(cpio, "-itv", "--quiet", "--numeric-uid-gid")
	cmd.Stdin = bytes.NewReader(arc.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// mode links uid gid size-or-dev date... name [-> target]
		f := strings.Fields(l)
		if len(f) < 9 {
			t.Fatalf("cpio -t line %q", l)
		}
		size := f[4]
		name := strings.Join(f[8:], " ")
		if strings.HasPrefix(f[0], "c") {
			size, name = f[4]+f[5], strings.Join(f[9:], " ")
		}
		got = append(got, strings.Join([]string{f[0], f[2], f[3], size, name}, " "))
	}
	want := []string{
		"drwxr-xr-x 0 0 0 dev",
		"crw------- 0 0 5,1 dev/console",
		"drwxr-xr-x 0 0 0 bin",
		"-rwxr-xr-x 0 0 19 init",
		"lrwxrwxrwx 0 0 7 bin/sh -> busybox",
		"drwxrwxrwt 0 0 0 tmp",
		"-rw-r----- 64123 64124 19 home/u/x",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("cpio -t:\ngot\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cmd = exec.Command(cpio, "-i", "--quiet", "--to-stdout", "init")
	cmd.Stdin = bytes.NewReader(arc.Bytes())
	b, err := cmd.Output()
	if err != nil || string(b) != content {
		t.Errorf("extract init: got %q (%v), want %q", b, err, content)
	}
}

func TestSpecErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"pipe /p 0644 0 0", `line 1: unknown entry type "pipe"`},
		{"\ndir /d 0755 0", "line 2: dir: got 4 fields, want 5"},
		{"dir /d 0789 0 0", "dir /d: "},
		{"dir / 0755 0 0", "dir: empty name"},
		{"nod /n 0600 0 0 x 1 1", `device type "x"`},
		{"nod /n 0600 0 0 c 1 -1", "nod /n: "},
		{"file /f /nonexistent/file 0644 0 0", "no such file"},
		{"file /f / 0644 0 0", "is not a regular file"},
	} {
		err := write(new(bytes.Buffer), strings.NewReader(tc.spec))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("spec %q: got %v, want an error with %q", tc.spec, err, tc.want)
		}
	}
}
