// Package qr renders QR codes as text, so that 'relay totp enroll' can show
// the enrolment URI on a server's terminal without an image viewer.
//
// It only draws what it is given: it must never log, store or transmit the
// content (which is a TOTP secret when enrolling).
package qr

import (
	"fmt"
	"image/color"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// Quiet is the light margin around the code, in modules: the 4 that ISO/IEC
// 18004 requires. Scanners fail without it on a busy terminal.
const Quiet = 4

// Background says which way round the terminal draws: the characters are
// ink in the terminal's text colour, so on a dark background the light
// modules are the ones drawn.
type Background int

const (
	// DarkBackground: light text on a dark terminal (the common default).
	DarkBackground Background = iota
	// LightBackground: dark text on a light terminal.
	LightBackground
)

// Render encodes content (error correction level M) and draws it with
// Unicode half blocks, two module rows per text line, one module per
// column, including the quiet zone. Every line ends in "\n".
func Render(content string, bg Background) (string, error) {
	code, err := qr.Encode(content, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("encode qr code: %w (hint: the content is too long for a qr code)", err)
	}
	b := code.Bounds()
	n := b.Dx() // QR codes are square
	dark := func(x, y int) bool {
		if x < 0 || y < 0 || x >= n || y >= n {
			return false // quiet zone
		}
		g := color.GrayModel.Convert(code.At(b.Min.X+x, b.Min.Y+y)).(color.Gray)
		return g.Y < 128
	}
	ink := func(x, y int) bool { return dark(x, y) == (bg == LightBackground) }
	var sb strings.Builder
	for y := -Quiet; y < n+Quiet; y += 2 {
		for x := -Quiet; x < n+Quiet; x++ {
			// The row below the last quiet row is quiet too.
			top, bottom := ink(x, y), ink(x, y+1)
			switch {
			case top && bottom:
				sb.WriteRune('█')
			case top:
				sb.WriteRune('▀')
			case bottom:
				sb.WriteRune('▄')
			default:
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}
