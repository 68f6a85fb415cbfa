package ui

import (
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qrQuiet is the light margin around the code, in modules. The standard
// asks for four; two is what phone cameras need in practice and keeps the
// code on a 24-line screen.
const qrQuiet = 2

// qrLines draws text as a QR code with half-block characters, two modules
// per character cell vertically. darkBG says the terminal draws light
// blocks on a dark background: then a block is a light module, so the
// code reads the right way round (dark modules on light) either way.
// IDs are upper-cased first: QR's alphanumeric mode holds them in a
// smaller code, and IDs are read case-insensitively.
func qrLines(text string, darkBG bool) ([]string, error) {
	q, err := qrcode.New(strings.ToUpper(text), qrcode.Low)
	if err != nil {
		return nil, err
	}
	q.DisableBorder = true
	bm := q.Bitmap()
	n := len(bm) + 2*qrQuiet
	dark := func(x, y int) bool {
		x, y = x-qrQuiet, y-qrQuiet
		if y < 0 || y >= len(bm) || x < 0 || x >= len(bm) {
			return false
		}
		return bm[y][x]
	}
	// ink: whether a module is drawn as a block.
	ink := func(x, y int) bool {
		if y >= n {
			return false // below the code: the terminal's own background
		}
		return dark(x, y) != darkBG
	}
	var out []string
	for y := 0; y < n; y += 2 {
		var b strings.Builder
		for x := 0; x < n; x++ {
			top, bottom := ink(x, y), ink(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		out = append(out, b.String())
	}
	return out, nil
}
