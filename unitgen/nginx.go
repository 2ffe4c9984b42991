package unitgen

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"text/template"
)

// serverName is what nginx's server_name takes here: host names, with a
// leading "*." wildcard at most; no regexes, no spaces, no semicolons.
var serverName = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// No location for /static/: WhiteNoise serves the collected files from the
// app with compressed variants and far-future cache headers for hashed
// names, so an alias would only add a second path to keep in step with the
// store, with nothing to gain at this scale.
var nginxTemplate = template.Must(template.New("nginx").Parse(`# Bitpoll behind nginx: printed by "bitpoll-install nginx".
# Static files are served by the app itself (WhiteNoise, compressed and
# cached), so no /static/ location is needed. Add TLS (certbot --nginx) and
# set secure_proxy_ssl_header = true in /etc/bitpoll/bitpoll.toml when nginx
# terminates it.
upstream bitpoll {
    server {{.Upstream}};
}

server {
    listen 80;
    listen [::]:80;
    server_name {{.ServerName}};

    client_max_body_size 10m;

    location / {
        proxy_pass http://bitpoll;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_redirect off;
        proxy_read_timeout {{.ReadTimeout}}s;
    }
}
`))

// Nginx returns a server block that proxies serverNames to the socket of s.
func Nginx(s Spec, serverNames ...string) ([]byte, error) {
	l, err := parseListen(s.Listen)
	if err != nil {
		return nil, fmt.Errorf("render nginx server block: %w", err)
	}
	if len(serverNames) == 0 {
		return nil, fmt.Errorf("render nginx server block: no server name; give the site's host name, like %q", "poll.example.org")
	}
	for _, n := range serverNames {
		if !serverName.MatchString(n) {
			return nil, fmt.Errorf("render nginx server block: server name %q is not a host name like %q", n, "poll.example.org")
		}
	}
	upstream := "unix:" + s.Listen
	if !l.unix {
		host := l.host
		switch host {
		case "", "0.0.0.0":
			host = "127.0.0.1"
		case "::":
			host = "::1"
		}
		upstream = net.JoinHostPort(host, l.port)
	}
	var b strings.Builder
	err = nginxTemplate.Execute(&b, map[string]any{
		"Upstream":    upstream,
		"ServerName":  strings.Join(serverNames, " "),
		"ReadTimeout": int(s.Timeout.Seconds()) + 5, // past gunicorn's, so gunicorn's error wins
	})
	if err != nil {
		return nil, fmt.Errorf("render nginx server block: %w", err)
	}
	return []byte(b.String()), nil
}
