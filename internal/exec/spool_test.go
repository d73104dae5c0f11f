package exec

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestSpoolReadAt reads the kept output while it is written, in memory
// and after the spill to a temp file, never past the cap or the end.
func TestSpoolReadAt(t *testing.T) {
	s := newSpool(t.TempDir(), memThreshold+1000)
	defer s.Close()
	buf := make([]byte, 10)
	if n, err := s.ReadAt(buf, 0); n != 0 || err != io.EOF {
		t.Fatalf("empty spool: got %d, %v, want 0, EOF", n, err)
	}
	s.Write([]byte("hello"))
	if n, err := s.ReadAt(buf, 0); string(buf[:n]) != "hello" || err != nil {
		t.Fatalf("in memory: got %q, %v", buf[:n], err)
	}
	if n, err := s.ReadAt(buf, 5); n != 0 || err != io.EOF {
		t.Fatalf("at the end: got %d, %v, want 0, EOF", n, err)
	}
	// Past the memory threshold and past the cap.
	big := bytes.Repeat([]byte("x"), memThreshold+2000)
	s.Write(big)
	if s.f == nil {
		t.Fatal("the spool did not spill to a file")
	}
	var got []byte
	for off := int64(0); ; {
		n, err := s.ReadAt(buf, off)
		got = append(got, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := append([]byte("hello"), big[:memThreshold+995]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want the %d kept", len(got), len(want))
	}
	if n, err := s.ReadAt(buf, -1); n != 0 || err != io.EOF {
		t.Errorf("negative offset: got %d, %v", n, err)
	}
	s.Close()
	if _, err := s.ReadAt(buf, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: got %v, want ErrClosed", err)
	}
}
