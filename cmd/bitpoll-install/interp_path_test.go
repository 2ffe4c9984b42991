package main

import "testing"

func TestInterpreterStorePath(t *testing.T) {
	store := "/opt/bitpoll/store"
	tests := []struct{ python, want string }{
		{"/opt/bitpoll/store/abc-cpython-3.13.15-20260814/python/bin/python3.13", "/opt/bitpoll/store/abc-cpython-3.13.15-20260814"},
		{"/usr/bin/python3.13", ""},
		{"/opt/bitpoll/store", ""},
		{"/opt/bitpoll/storefront/x/bin/python3", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := interpreterStorePath(store, tt.python); got != tt.want {
			t.Errorf("interpreterStorePath(%q, %q) = %q, want %q", store, tt.python, got, tt.want)
		}
	}
	id := `cpython 3.13.15 x86_64 abiflags="" /opt/bitpoll/store/abc-cpython-3.13.15-20260814/python/bin/python3.13`
	if got, want := pythonSummary(id, interpreterStorePath(store, pythonPath(id))), "3.13.15 abc-cpython-3.13.15-20260814"; got != want {
		t.Errorf("pythonSummary(standalone) = %q, want %q", got, want)
	}
	host := `cpython 3.13.5 x86_64 abiflags="" /usr/bin/python3.13`
	if got, want := pythonSummary(host, ""), "3.13.5 /usr/bin/python3.13"; got != want {
		t.Errorf("pythonSummary(host) = %q, want %q", got, want)
	}
}
