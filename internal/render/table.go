package render

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// maxCell is the widest a cell is shown, in characters: a phone held
// upright shows about forty monospace characters, so a table of two or
// three columns stays readable.
const maxCell = 24

// table lays rows out as aligned columns, header first, and cuts it at a
// row so that it fits lim.Units, saying how many rows it left out. An
// object row gives its cells by column name; an array row by position; a
// scalar row is one cell. Numbers are aligned right.
func table(rows []any, cols []string, lim Limits) (string, error) {
	if len(rows) == 0 {
		return "(no rows)", nil
	}
	header := cols != nil
	if cols == nil {
		cols = columns(rows)
		header = len(cols) > 0
	}
	width := len(cols)
	if !header {
		for _, r := range rows {
			if a, ok := r.([]any); ok {
				width = max(width, len(a))
			} else {
				width = max(width, 1)
			}
		}
	}
	if width == 0 {
		width = 1
	}
	cell := func(r any, i int) (string, bool) {
		switch r := r.(type) {
		case map[string]any:
			if header {
				return cellText(r[cols[i]])
			}
			if i == 0 {
				return cellText(r)
			}
		case []any:
			if header {
				if i == 0 {
					return cellText(r)
				}
				return "", false
			}
			if i < len(r) {
				return cellText(r[i])
			}
		default:
			if i == 0 {
				return cellText(r)
			}
		}
		return "", false
	}
	var head []string
	if header {
		head = make([]string, width)
		for i, c := range cols {
			head[i] = clip(c)
		}
	}
	// At most one row per unit can fit; cells are computed for those only,
	// and the number of rows shown is found by bisection.
	n := min(len(rows), lim.Units)
	grid := make([][]string, n)
	right := make([][]bool, n)
	for i, r := range rows[:n] {
		grid[i], right[i] = make([]string, width), make([]bool, width)
		for j := range width {
			grid[i][j], right[i][j] = cell(r, j)
		}
	}
	fits := func(k int) (string, bool) {
		s := layout(head, grid[:k], right[:k], len(rows)-k)
		return s, units(s) <= lim.Units
	}
	if s, ok := fits(n); ok {
		return s, nil
	}
	lo, hi := 0, n // fits(lo) holds or lo == 0; fits(hi) does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if _, ok := fits(mid); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	s, _ := fits(lo)
	return s, nil
}

// columns is every key of the object rows, sorted: gojq keeps no key order.
func columns(rows []any) []string {
	seen := map[string]bool{}
	for _, r := range rows {
		if m, ok := r.(map[string]any); ok {
			for k := range m {
				seen[k] = true
			}
		}
	}
	cols := make([]string, 0, len(seen))
	for k := range seen {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	return cols
}

// cellText is a value as a cell: a string as itself, null as nothing, a
// number right-aligned, anything else compact JSON; on one line, clipped.
func cellText(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return clip(v), false
	case map[string]any, []any:
		var b strings.Builder
		_ = writeJSON(&b, v, "", 0, 4*maxCell)
		return clip(b.String()), false
	default:
		s, err := gojq.Marshal(v)
		if err != nil {
			return "", false
		}
		_, isBool := v.(bool)
		return clip(string(s)), !isBool
	}
}

// clip puts s on one line (control characters become spaces) and cuts it
// to maxCell characters with an ellipsis.
func clip(s string) string {
	rs := make([]rune, 0, min(len(s), 4*maxCell))
	for _, r := range s {
		if len(rs) > maxCell {
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isBidi(r) {
			r = ' '
		}
		rs = append(rs, r)
	}
	if len(rs) > maxCell {
		rs = append(rs[:maxCell-1], '…')
	}
	return strings.TrimRight(string(rs), " ")
}

// isBidi reports the bidirectional formatting characters, which would
// reorder a row on screen (chatfmt strips them too, after alignment).
func isBidi(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

func layout(head []string, grid [][]string, right [][]bool, more int) string {
	width := 0
	if head != nil {
		width = len(head)
	}
	for _, l := range grid {
		width = max(width, len(l))
	}
	w := make([]int, width)
	measureRow := func(l []string) {
		for i, c := range l {
			w[i] = max(w[i], utf8.RuneCountInString(c))
		}
	}
	if head != nil {
		measureRow(head)
	}
	for _, l := range grid {
		measureRow(l)
	}
	var b strings.Builder
	row := func(l []string, r []bool) {
		var line strings.Builder
		for i := range width {
			c := ""
			if i < len(l) {
				c = l[i]
			}
			pad := w[i] - utf8.RuneCountInString(c)
			if i > 0 {
				line.WriteString("  ")
			}
			if r != nil && i < len(r) && r[i] {
				line.WriteString(strings.Repeat(" ", pad))
				line.WriteString(c)
			} else {
				line.WriteString(c)
				line.WriteString(strings.Repeat(" ", pad))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	if head != nil {
		row(head, nil)
		total := 0
		for i, x := range w {
			if i > 0 {
				total += 2
			}
			total += x
		}
		b.WriteString(strings.Repeat("─", total))
		b.WriteByte('\n')
	}
	for i, l := range grid {
		row(l, right[i])
	}
	switch {
	case more == 1:
		b.WriteString("… 1 more row\n")
	case more > 1:
		fmt.Fprintf(&b, "… %d more rows\n", more)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// units counts s as Telegram does, in UTF-16 code units; the text chatfmt
// shows is never longer than this count.
func units(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}
