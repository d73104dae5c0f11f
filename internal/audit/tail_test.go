package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// forwardLast is what Summarize did before it read from the tail: decode
// every line of every file, forward, without the pre-check, and keep the
// last n that match.
func forwardLast(t *testing.T, files []string, f Filter, n int) []Line {
	t.Helper()
	var all []Line
	q := newQuery(&f)
	q.pre = nil
	for _, p := range sortFiles(files) {
		if err := scanShow(p, q, func(l Line) error { all = append(all, l); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// showLog writes a rotated log of mixed records for the show tests and
// returns its directory.
func showLog(t *testing.T) string {
	t.Helper()
	dir, _, l := newLog(t, Options{RotateBytes: 2500})
	exit := 1
	for i := 0; i < 40; i++ {
		mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime", UserID: 7, Argv: []string{"/usr/bin/uptime"}})
		mustAppend(t, l, Record{Type: "exec_end", Outcome: "failed", Command: "uptime", Exit: &exit, Detail: `"type":"login" "command":"reboot"`})
		if i%5 == 0 {
			mustAppend(t, l, Record{Type: "request", Outcome: "denied", Command: "reboot", Reason: "no session", Detail: "caf\u00e9 <b>"})
		}
		if i%7 == 0 {
			mustAppend(t, l, Record{Type: "login", Outcome: "ok", UserID: 7, Params: map[string]string{"command": "reboot"}})
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func lastFile(t *testing.T, dir string) string {
	t.Helper()
	fs := Files(dir)
	return fs[len(fs)-1]
}

func TestTailMatchesForward(t *testing.T) {
	base := showLog(t)
	if n := len(Files(base)); n < 4 {
		t.Fatalf("got %d files, want at least 4 to cover rotation", n)
	}
	aLine := readLines(t, lastFile(t, base))[0]
	scenarios := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"clean", nil},
		{"torn tail", func(t *testing.T, dir string) {
			appendRaw(t, lastFile(t, dir), aLine[:len(aLine)/2])
		}},
		{"torn tail that is a whole record but its newline", func(t *testing.T, dir string) {
			appendRaw(t, lastFile(t, dir), aLine[:len(aLine)-1])
		}},
		{"torn tail longer than a record", func(t *testing.T, dir string) {
			appendRaw(t, lastFile(t, dir), bytes.Repeat([]byte("x"), 3*MaxRecordBytes))
		}},
		{"empty newest file", func(t *testing.T, dir string) {
			n, _ := fileNumber(lastFile(t, dir))
			if err := os.WriteFile(filepath.Join(dir, nameFor(n+1)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"damaged lines inside", func(t *testing.T, dir string) {
			fs := Files(dir)
			for _, p := range []string{fs[len(fs)-1], fs[len(fs)-2]} {
				lines := readLines(t, p)
				mid := len(lines) / 2
				var out [][]byte
				out = append(out, lines[:mid]...)
				out = append(out, []byte("garbage\n"), []byte("\n"), append(bytes.Repeat([]byte("y"), MaxRecordBytes+1), '\n'),
					append(bytes.Repeat([]byte("z"), MaxRecordBytes), '\n'), aLine)
				out = append(out, lines[mid:]...)
				writeLines(t, p, out)
			}
		}},
	}
	mid := forwardLast(t, Files(base), Filter{}, 1<<30)
	tMid := mid[len(mid)/2].Time
	filters := []struct {
		name string
		f    Filter
	}{
		{"none", Filter{}},
		{"type", Filter{Types: []string{"exec_end"}}},
		{"types", Filter{Types: []string{"login", "rotate"}}},
		{"type no match", Filter{Types: []string{"nope"}}},
		{"command", Filter{Command: "/reboot"}},
		{"command and outcome", Filter{Command: "uptime", Outcome: "ok"}},
		{"outcome", Filter{Outcome: "denied"}},
		{"since", Filter{Since: tMid}},
		{"until", Filter{Until: tMid}},
		{"window", Filter{Since: tMid.Add(-20 * time.Second), Until: tMid.Add(20 * time.Second)}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, p := range Files(base) {
				b, _ := os.ReadFile(p)
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if sc.damage != nil {
				sc.damage(t, dir)
			}
			files := Files(dir)
			for _, ft := range filters {
				all := forwardLast(t, files, ft.f, 1<<30)
				if scanned, _ := Summarize(files, ft.f, 0); !reflect.DeepEqual(scanned, all) {
					t.Fatalf("%s: Scan with the pre-check shows\n%s\nwant\n%s", ft.name, dump(scanned), dump(all))
				}
				inNewest := map[string]int{}
				for _, l := range all {
					inNewest[l.File]++
				}
				k := inNewest[filepath.Base(files[len(files)-1])]
				k2 := k + inNewest[filepath.Base(files[len(files)-2])]
				ns := []int{1, 2, 3, k - 1, k, k + 1, k2, k2 + 1, len(all) - 1, len(all), len(all) + 1, 10_000}
				for _, n := range ns {
					if n <= 0 {
						continue
					}
					want := forwardLast(t, files, ft.f, n)
					blocks := []int{97, 4096, tailBlock}
					if ft.f.empty() && n <= 3 {
						blocks = append(blocks, 1)
					}
					for _, block := range blocks {
						got, err := summarizeTail(files, ft.f, n, block)
						if err != nil {
							t.Fatalf("%s, n=%d, block %d: %v", ft.name, n, block, err)
						}
						if !reflect.DeepEqual(got, want) {
							t.Fatalf("%s, n=%d, block %d: got\n%s\nwant\n%s", ft.name, n, block, dump(got), dump(want))
						}
					}
				}
			}
		})
	}
}

func dump(ls []Line) string {
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s %s raw=%q\n", l.File, l.String(), l.Raw)
	}
	return b.String()
}

// TestTailTornLine pins down what show does with a torn last line, the
// same read forwards and backwards: a fragment is shown as an unreadable
// line naming its line number; a record cut just before its newline is
// shown as the record, and --json prints it whole.
func TestTailTornLine(t *testing.T) {
	dir, _, l := newLog(t, Options{})
	mustAppend(t, l, Record{Type: "request", Outcome: "ok", Command: "uptime"})
	l.Close()
	path := lastFile(t, dir)
	lines := readLines(t, path)
	rec := lines[1]

	appendRaw(t, path, rec[:40])
	for _, got := range [][]Line{mustSummarize(t, dir, 1), forwardLast(t, Files(dir), Filter{}, 1)} {
		if len(got) != 1 || got[0].Type != "?" || got[0].Detail != "line 3: unreadable (torn or damaged)" || got[0].Raw != nil {
			t.Fatalf("got %s, want line 3 shown as unreadable", dump(got))
		}
	}
	if got := mustSummarizeFilter(t, dir, Filter{Types: []string{"request"}}, 1); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("got %s under a filter, want the torn line skipped and seq 2 shown", dump(got))
	}

	writeLines(t, path, [][]byte{lines[0], lines[1], rec[:len(rec)-1]})
	for _, got := range [][]Line{mustSummarize(t, dir, 1), forwardLast(t, Files(dir), Filter{}, 1)} {
		if len(got) != 1 || got[0].Seq != 2 || !bytes.Equal(got[0].Raw, rec[:len(rec)-1]) {
			t.Fatalf("got %s, want the record without its newline shown whole", dump(got))
		}
	}
}

func mustSummarize(t *testing.T, dir string, n int) []Line {
	t.Helper()
	return mustSummarizeFilter(t, dir, Filter{}, n)
}

func mustSummarizeFilter(t *testing.T, dir string, f Filter, n int) []Line {
	t.Helper()
	got, err := Summarize(Files(dir), f, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r *os.File
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// TestTailReadsOnlyTheTail proves that the cost of -n follows n: the last
// lines of a big file cost one block, and an older file that is not
// needed is never opened (here it does not even exist, which the forward
// reader reports).
func TestTailReadsOnlyTheTail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	genLog(t, dir, randomKey(t), 20_000, 0, stepClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Second), benchRecord)
	path := lastFile(t, dir)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() < 100*tailBlock {
		t.Fatalf("got a %d-byte file, want one much larger than a block", fi.Size())
	}
	cr := &countingReader{r: f}
	seen := 0
	if err := eachLineBack(cr, fi.Size(), tailBlock, func([]byte, int64, bool) bool { seen++; return seen < 10 }); err != nil {
		t.Fatal(err)
	}
	if cr.n > tailBlock {
		t.Fatalf("read %d bytes for the last 10 lines, want at most one block (%d)", cr.n, tailBlock)
	}

	files := append([]string{filepath.Join(dir, nameFor(0))}, Files(dir)...)
	if _, err := Summarize(files, Filter{}, 0); err == nil {
		t.Fatal("the forward reader read a missing file without an error")
	}
	got, err := Summarize(files, Filter{}, 10)
	if err != nil || len(got) != 10 || got[9].Seq != 20_000 {
		t.Fatalf("got %d lines ending at %v (%v), want the last 10 without touching the missing file", len(got), got, err)
	}
}

// TestEachLineBackSplitsLikeTheForwardReader feeds eachLineBack odd files
// byte by byte against bytes.SplitAfter, the forward reader's split.
func TestEachLineBackSplitsLikeTheForwardReader(t *testing.T) {
	long := string(bytes.Repeat([]byte("L"), MaxRecordBytes+1))
	justFits := string(bytes.Repeat([]byte("F"), MaxRecordBytes))
	for _, content := range []string{"", "\n", "\n\n", "a", "a\n", "a\nb", "a\nb\n", "\n\na\n\nb", long, long + "\n", "a\n" + long + "\nb\n", justFits + "\n" + justFits, long + "\n" + long} {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, l := range bytes.SplitAfter([]byte(content), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			if len(bytes.TrimSuffix(l, newline)) > MaxRecordBytes {
				l = []byte("<long>")
			}
			want = append([]string{string(l)}, want...)
		}
		for _, block := range []int{1, 2, 5, 4096, tailBlock} {
			f, _ := os.Open(path)
			var got []string
			var starts []int64
			err := eachLineBack(f, int64(len(content)), block, func(line []byte, start int64, isLong bool) bool {
				if isLong {
					line = []byte("<long>")
				}
				got, starts = append(got, string(line)), append(starts, start)
				return true
			})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("block %d, content of %d bytes: got %d lines %.80q, want %d %.80q", block, len(content), len(got), got, len(want), want)
			}
			for i, s := range starts {
				if i > 0 && s >= starts[i-1] || s < 0 || (i == len(starts)-1 && s != 0) {
					t.Fatalf("block %d: got starts %v, want decreasing to 0", block, starts)
				}
			}
		}
	}
}
