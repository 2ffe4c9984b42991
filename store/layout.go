package store

import "github.com/bitpoll-install/bitpoll-install/layout"

// Layout is where the store, the generations and the rest live; package
// layout defines every path once.
type Layout = layout.Layout

// UserLayout is the layout for running without root (layout.User).
func UserLayout() (Layout, error) { return layout.User() }
