package install

import (
	"testing"

	"github.com/bitpoll-install/bitpoll-install/lockfile"
	"github.com/bitpoll-install/bitpoll-install/pyenv"
)

// TestStoreKeyMsgfmt: whether translations could be compiled is a build
// input, so installing gettext gives a new store path, not the old one
// without translations.
func TestStoreKeyMsgfmt(t *testing.T) {
	l := &lockfile.Lock{App: lockfile.App{Name: "bitpoll", Version: "0.11.0", Tree: "dd84e479307b3a6adffd83dcd02c34cafb93fcb2"}}
	it := &pyenv.Interpreter{}
	none := storeKey(l, nil, it, "")
	with := storeKey(l, nil, it, "/usr/bin/msgfmt msgfmt (GNU gettext-tools) 0.23.1")
	if none == with {
		t.Errorf("storeKey without and with msgfmt = %q both, want two keys", none)
	}
	if again := storeKey(l, nil, it, ""); again != none {
		t.Errorf("storeKey is not stable: %q then %q", none, again)
	}
}
