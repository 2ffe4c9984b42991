package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/bitpoll-install/bitpoll-install/unitgen"
)

// nginxOptions are the flags of "nginx".
type nginxOptions struct {
	configOptions
	ServerNames []string
}

func (o *nginxOptions) AddFlags(c *cobra.Command) {
	o.configOptions.AddFlags(c)
	c.Flags().StringArrayVar(&o.ServerNames, "server-name", nil, "the site's host `NAME` (repeat; default: the host of base_url)")
}

func newNginxCommand(g *globalOptions) *cobra.Command {
	var o nginxOptions
	c := &cobra.Command{
		Use:   "nginx",
		Short: "Print an nginx server block that proxies to Bitpoll",
		Long: `Print an nginx server block that proxies the site to bitpoll.socket, as the
config sets it: a unix socket (listen.socket, best with nginx on the same
host) or an address and port. It passes Host and X-Forwarded-Proto on.

It has no location for static files: the app serves them itself with
WhiteNoise, compressed and with far-future cache headers.`,
		Example: `  bitpoll-install nginx --server-name poll.example.org > /etc/nginx/sites-available/bitpoll`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNginx(g, o)
		},
	}
	o.AddFlags(c)
	return c
}

func runNginx(g *globalOptions, o nginxOptions) error {
	c, spec, err := o.spec(g)
	if err != nil {
		return err
	}
	names := o.ServerNames
	if len(names) == 0 {
		u, err := url.Parse(c.BaseURL)
		if err != nil || u.Hostname() == "" {
			return &usageError{fmt.Errorf("base_url %q has no host: give --server-name", c.BaseURL)}
		}
		names = []string{u.Hostname()}
	}
	block, err := unitgen.Nginx(spec, names...)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.CheckServerName(n); err != nil {
			return &usageError{err}
		}
	}
	if g.JSON {
		writeJSONLine(g.stdout, nginxRecord{"nginx", list(names), string(block)})
		return nil
	}
	_, err = g.stdout.Write(block)
	return err
}

type nginxRecord struct {
	MessageType string   `json:"message_type"` // "nginx"
	ServerNames []string `json:"server_names"`
	Text        string   `json:"text"`
}
