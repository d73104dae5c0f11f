// Package suggest finds the word a person probably meant: the one "did you
// mean" that every relay message uses, for config keys, placeholders,
// subcommands, flags, flag values and command names alike.
//
// It must stay a pure function of its inputs: no I/O, and nothing that
// depends on the order candidates were given in beyond breaking ties.
package suggest

// Closest returns the candidate closest to s by edit distance, or "" when
// none is close enough to be a plausible typo: at most a third of the
// shorter word's length, and at least 1. Ties go to the earlier candidate.
func Closest(s string, candidates []string) string {
	best, bestD := "", 0
	for _, c := range candidates {
		d := Distance(s, c)
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(len([]rune(s)), len([]rune(best)))/3)
	if best == "" || bestD > limit || best == s {
		return ""
	}
	return best
}

// Distance is the optimal-string-alignment edit distance (Levenshtein plus
// adjacent transposition, the typical typo) between a and b, in runes.
// Words longer than 64 runes are not compared: the distance is then the
// longer length, so that hostile input costs nothing quadratic.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb))
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
