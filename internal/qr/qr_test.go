package qr

import (
	"image/color"
	"strings"
	"testing"

	"github.com/boombuler/barcode/qr"
)

// decode turns a rendering back into "is this module dark" rows.
func decode(t *testing.T, s string, bg Background) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		var top, bottom []bool
		for _, r := range line {
			var ti, bi bool
			switch r {
			case '█':
				ti, bi = true, true
			case '▀':
				ti = true
			case '▄':
				bi = true
			case ' ':
			default:
				t.Fatalf("unexpected rune %q", r)
			}
			// ink is light on a dark background, dark on a light one.
			top = append(top, ti == (bg == LightBackground))
			bottom = append(bottom, bi == (bg == LightBackground))
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

func TestRenderMatchesEncoder(t *testing.T) {
	const uri = "otpauth://totp/relay:owner?algorithm=SHA1&digits=6&issuer=relay&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	want, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		t.Fatal(err)
	}
	n := want.Bounds().Dx()
	for _, bg := range []Background{DarkBackground, LightBackground} {
		s, err := Render(uri, bg)
		if err != nil {
			t.Fatal(err)
		}
		rows := decode(t, s, bg)
		if got, wantRows := len(rows), n+2*Quiet+1; got != wantRows { // n is odd: one padding row
			t.Fatalf("bg %d: got %d module rows, want %d", bg, got, wantRows)
		}
		for y, row := range rows {
			if len(row) != n+2*Quiet {
				t.Fatalf("bg %d row %d: got width %d, want %d", bg, y, len(row), n+2*Quiet)
			}
			for x, d := range row {
				mx, my := x-Quiet, y-Quiet
				wantDark := false
				if mx >= 0 && my >= 0 && mx < n && my < n {
					wantDark = color.GrayModel.Convert(want.At(mx, my)).(color.Gray).Y < 128
				}
				if d != wantDark {
					t.Fatalf("bg %d module (%d,%d): got dark=%v, want %v", bg, mx, my, d, wantDark)
				}
			}
		}
	}
}

func TestRenderQuietZone(t *testing.T) {
	s, err := Render("hello", DarkBackground)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	// On a dark background the quiet zone is all ink: 2 full text rows
	// (4 modules) at the top and 4 columns on each side.
	for _, l := range lines[:Quiet/2] {
		if strings.Trim(l, "█") != "" {
			t.Errorf("top quiet row %q: want only full blocks", l)
		}
	}
	for _, l := range lines[len(lines)-Quiet/2:] {
		if strings.Trim(l, "█") != "" {
			t.Errorf("bottom quiet row %q: want only full blocks", l)
		}
	}
	side := strings.Repeat("█", Quiet)
	for i, l := range lines {
		r := []rune(l)
		if string(r[:Quiet]) != side || string(r[len(r)-Quiet:]) != side {
			t.Errorf("line %d: got %q, want %d quiet columns each side", i, l, Quiet)
		}
	}
}

func TestRenderTooLong(t *testing.T) {
	if _, err := Render(strings.Repeat("x", 5000), DarkBackground); err == nil {
		t.Error("got nil error for 5000 bytes, want an error")
	}
}

func BenchmarkRender(b *testing.B) {
	const uri = "otpauth://totp/relay:host?algorithm=SHA1&digits=6&issuer=relay&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	for b.Loop() {
		if _, err := Render(uri, DarkBackground); err != nil {
			b.Fatal(err)
		}
	}
}
