# Go, the lock's Python environment and Nix tooling. `bitpoll-dev` runs a
# Bitpoll checkout against that environment: it drops the settings shim
# into the checkout, keeps settings, secrets and an SQLite database in
# .bitpoll-dev/, and runs manage.py (runserver, with hot reload, by default).
{
  mkShell,
  writeShellApplication,
  go,
  gopls,
  gettext,
  git,
  nixfmt,
  nix-prefetch-git,
  bitpoll,
}:

let
  dev = writeShellApplication {
    name = "bitpoll-dev";
    runtimeInputs = [ bitpoll.python gettext ];
    text = ''
      checkout=''${BITPOLL_CHECKOUT:-$PWD}
      if [ ! -e "$checkout/manage.py" ]; then
        echo "bitpoll-dev: $checkout has no manage.py: run it in a Bitpoll checkout, or set BITPOLL_CHECKOUT" >&2
        exit 1
      fi
      state=$checkout/.bitpoll-dev
      mkdir -p "$state/secrets" "$state/media" "$state/static"
      chmod 0700 "$state/secrets"
      install -m 0644 ${../shim/settings_local.py} "$checkout/${bitpoll.project}/settings_local.py"
      for f in secret_key field_encryption_key; do
        [ -s "$state/secrets/$f" ] || head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' > "$state/secrets/$f"
      done
      cat > "$state/settings.json" <<JSON
      {"base_url": "http://localhost:8000", "allowed_hosts": ["localhost", "127.0.0.1"], "debug": true,
       "database": {"engine": "sqlite", "path": "$state/db.sqlite3"},
       "static_root": "$state/static", "media_root": "$state/media"}
      JSON
      export BITPOLL_SETTINGS_FILE=$state/settings.json BITPOLL_SECRETS_DIR=$state/secrets
      cd "$checkout"
      if [ $# -eq 0 ]; then
        python manage.py migrate --noinput
        set -- runserver
      fi
      exec python manage.py "$@"
    '';
  };
in
mkShell {
  packages = [
    go
    gopls
    git
    gettext
    nixfmt
    nix-prefetch-git
    bitpoll.python
    dev
  ];
  shellHook = ''
    echo "bitpoll-install dev shell: Go $(go env GOVERSION), Python of bitpoll.lock ($(python --version)); in a Bitpoll checkout run: bitpoll-dev"
  '';
}
