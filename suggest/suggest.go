// Package suggest finds the known word a mistyped one was meant to be,
// for the "did you mean" of every error that names a key or a command.
package suggest

import "strings"

// Nearest returns the candidate closest to word (compared in lower case)
// whose distance is below limit, or "" when none is.
func Nearest(word string, candidates []string, limit int) string {
	best, bestD := "", limit
	w := strings.ToLower(word)
	for _, c := range candidates {
		if d := Distance(w, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Distance is the edit distance between a and b, counting a swap of two
// neighbouring letters as one edit (optimal string alignment), the
// commonest typo.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
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
