package safearchive

import (
	"errors"
	"strings"
	"testing"
)

func TestMax(t *testing.T) {
	l := Limits{Ratio: 100, Ceiling: 1 << 30, Files: 10}
	for _, tc := range []struct{ size, want int64 }{
		{0, 0},
		{1000, 100_000},
		{(1 << 30) / 100, (1 << 30) / 100 * 100},
		{1 << 30, 1 << 30},
		{1 << 62, 1 << 30}, // no overflow
	} {
		if got := l.Max(tc.size); got != tc.want {
			t.Errorf("Max(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
	if got := (Limits{Ceiling: 5}).Max(1); got != 5 {
		t.Errorf("Max(1) without a ratio = %d, want the ceiling 5", got)
	}
}

func TestBudget(t *testing.T) {
	l := Limits{Ratio: 10, Ceiling: 1000, Files: 3}
	for _, tc := range []struct {
		name        string
		archiveSize int64
		sizes       []int64
		want        string // "" for no error
	}{
		{"within", 50, []int64{200, 300}, ""},
		{"exactly", 50, []int64{500}, ""},
		{"ratio", 50, []int64{200, 301}, `more than 500 bytes (10 times its own 50 bytes), at member "m1"`},
		{"ceiling", 500, []int64{1001}, `more than 1000 bytes, at member "m0"`},
		{"negative", 50, []int64{-1}, `at member "m0"`},
		{"files", 50, []int64{0, 0, 0, 0}, "more than 3 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := l.Budget(tc.archiveSize)
			var err error
			for i, s := range tc.sizes {
				if err = b.Add("m"+string(rune('0'+i)), s); err != nil {
					break
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Add = %v, want nil", err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add = %v, want a *LimitError containing %q", err, tc.want)
			}
		})
	}
}
