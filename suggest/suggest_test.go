package suggest

import "testing"

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"lock", "lock", 0}, {"lck", "lock", 1}, {"lcok", "lock", 1}, {"lck", "gc", 2}, {"kitten", "sitting", 3}, {"", "abc", 3}, {"a", "", 1}, {"port", "prot", 1}, {"ca", "abc", 3}, {"täst", "test", 1},
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNearest(t *testing.T) {
	cmds := []string{"gc", "generations", "install", "lock"}
	tests := []struct {
		word  string
		limit int
		want  string
	}{
		{"lck", 3, "lock"}, {"LOCK", 3, "lock"}, {"instal", 3, "install"}, {"zzzzzz", 3, ""}, {"lck", 1, ""},
	}
	for _, tt := range tests {
		if got := Nearest(tt.word, cmds, tt.limit); got != tt.want {
			t.Errorf("Nearest(%q, %q, %d) = %q, want %q", tt.word, cmds, tt.limit, got, tt.want)
		}
	}
}
