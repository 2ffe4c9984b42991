package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/config"
	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// configOptions are the flags of the commands that read bitpoll.toml.
type configOptions struct {
	Config string
}

func (o *configOptions) AddFlags(c *cobra.Command) {
	c.Flags().StringVar(&o.Config, "config", "", "the config `FILE` (default /etc/bitpoll/bitpoll.toml, under --root if given)")
}

// load reads the config; with no --config and no file at the default
// place, it uses the default config and says so.
func (o *configOptions) load(g *globalOptions) (*config.Config, error) {
	path := o.Config
	if path == "" {
		path = filepath.Join(g.Root, config.DefaultPath)
	}
	c, err := config.Load(path)
	if o.Config == "" && errors.Is(err, os.ErrNotExist) {
		newReporter(g).Notef("no %s: using the default config (install writes it)", path)
		return config.Default(), nil
	}
	return c, err
}

// spec loads the config and its unit spec on the FHS paths.
func (o *configOptions) spec(g *globalOptions) (*config.Config, unitgen.Spec, error) {
	c, err := o.load(g)
	if err != nil {
		return nil, unitgen.Spec{}, err
	}
	spec, err := c.Spec(unitgen.DefaultPaths())
	return c, spec, err
}

func newUnitCommand(g *globalOptions) *cobra.Command {
	var o configOptions
	c := &cobra.Command{
		Use:   "unit",
		Short: "Print the systemd units that install would write",
		Long: `Print bitpoll.socket, bitpoll.service and bitpoll-migrate.service as install
would write them for the config, after checking the config.

The service runs with the hardening profile built into this binary (each
directive with its reason): a transient user, a read-only view of only the
store, the interpreter and its settings, no capabilities, a system call
filter, and outbound traffic to localhost and outbound.allow only. Opening
outbound to everything (outbound.allow = ["any"]) prints a warning, since
systemd-analyze security then rates the service higher.`,
		Example: `  bitpoll-install unit
  bitpoll-install unit --config ./bitpoll.toml > /tmp/units.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUnit(g, o)
		},
	}
	o.AddFlags(c)
	return c
}

func runUnit(g *globalOptions, o configOptions) error {
	c, spec, err := o.spec(g)
	if err != nil {
		return err
	}
	units, err := unitgen.Render(spec)
	if err != nil {
		return err
	}
	rep := newReporter(g)
	for _, w := range c.Warnings() {
		rep.Notef("warning: %s", w)
	}
	if g.JSON {
		for _, u := range units {
			data, err := u.Bytes()
			if err != nil {
				return err
			}
			writeJSONLine(g.stdout, unitRecord{"unit", u.Name, string(data)})
		}
		return nil
	}
	text, err := unitgen.Text(units)
	if err != nil {
		return err
	}
	_, err = g.stdout.Write(text)
	return err
}

type unitRecord struct {
	MessageType string `json:"message_type"` // "unit"
	Name        string `json:"name"`
	Text        string `json:"text"`
}
