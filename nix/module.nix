# services.bitpoll: Bitpoll behind a systemd socket, with the migration
# step and the hardening profile of the Go installer's units (unitgen).
# The directives that differ are the paths: the store instead of
# /opt/bitpoll, and the file system view built from /nix/store.
#
# The flake passes `packageFor`, which builds the package with the
# system's own pkgs.
{ packageFor }:
{
  config,
  options,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    optional
    optionals
    types
    ;

  cfg = config.services.bitpoll;
  # Definitions of an option that does not exist are errors even under a
  # false mkIf: nginx and PostgreSQL are only touched where their modules
  # are part of the system, and an assertion explains their absence.
  hasModule = name: options ? services && options.services ? ${name};
  format = pkgs.formats.json { };

  stateDir = "/var/lib/bitpoll";
  # Where generated secrets live, as on the Go side: root only.
  secretsDir = "/etc/bitpoll/secrets";

  pkg = cfg.package;
  appDir = "${pkg}/${pkg.appDir}";
  python = pkg.python;

  # The hardening profile shared with unitgen: one directive a table.
  hardening = builtins.listToAttrs (
    map (d: {
      inherit (d) name value;
    }) (builtins.fromTOML (builtins.readFile ../unitgen/hardening.toml)).service
  );

  # Secret files are named by a string, never a Nix path, which would copy
  # them into the world-readable store. The characters are unitgen's for
  # unit paths: no spaces, "%" (specifiers) or "$" (variables).
  secretPath = types.nullOr (types.strMatching "/[A-Za-z0-9._+@/-]*");

  # The Go side's rules for the options that render into unit files.
  validate = import ./validate.nix;
  listenAddressError = validate.listenAddressError cfg.listenAddress;
  listenSocketError =
    if cfg.listenSocket == null then null else validate.listenSocketError cfg.listenSocket;
  outboundErrors = builtins.filter (e: e != null) (
    map validate.outboundError cfg.outboundAllow ++ [ (validate.outboundListError cfg.outboundAllow) ]
  );
  databaseURLError =
    if cfg.database.url == null then null else validate.databaseURLError cfg.database.url;
  # ["any"], as in bitpoll.toml: no IP allow-list.
  outboundOpen = cfg.outboundAllow == [ "any" ];
  # Nothing needs the network: the units get a private one (see networkNeeds).
  privateNetwork =
    validate.networkNeeds {
      inherit (cfg) settings outboundAllow;
    } == [ ];
  databaseSocketDir =
    if cfg.database.url == null then null else validate.databaseSocketDir cfg.database.url;
  # What createLocally connects to: peer authentication as the service
  # user over the local server's socket directory.
  localDatabaseURL = "postgresql://bitpoll@/bitpoll?host=/run/postgresql";

  secretKeyFile = if cfg.secretKeyFile != null then cfg.secretKeyFile else "${secretsDir}/secret_key";
  fieldEncryptionKeyFile =
    if cfg.fieldEncryptionKeyFile != null then
      cfg.fieldEncryptionKeyFile
    else
      "${secretsDir}/field_encryption_key";
  generateSecrets = cfg.secretKeyFile == null || cfg.fieldEncryptionKeyFile == null;

  credentials = [
    "secret_key:${secretKeyFile}"
    "field_encryption_key:${fieldEncryptionKeyFile}"
  ]
  ++ optional (cfg.database.passwordFile != null) "db_password:${cfg.database.passwordFile}"
  ++ optional (cfg.emailPasswordFile != null) "email_password:${cfg.emailPasswordFile}";

  isUnixListen = cfg.listenSocket != null;
  listenStream =
    if isUnixListen then
      cfg.listenSocket
    else if lib.hasInfix ":" cfg.listenAddress then
      "[${cfg.listenAddress}]:${toString cfg.port}"
    else
      "${cfg.listenAddress}:${toString cfg.port}";
  upstream =
    if isUnixListen then
      "unix:${cfg.listenSocket}"
    else if cfg.listenAddress == "0.0.0.0" then
      "127.0.0.1:${toString cfg.port}"
    else if cfg.listenAddress == "::" then
      "[::1]:${toString cfg.port}"
    else
      listenStream;

  # The shim's database settings, as the Go config writes them: SQLite in
  # the state directory, or the URL.
  databaseSettings =
    if cfg.database.url == null then
      {
        engine = "sqlite";
        path = "${stateDir}/db.sqlite3";
      }
    else
      { inherit (cfg.database) url; };
  isSqlite = (cfg.settings.database.engine or null) == "sqlite";

  settingsFile = format.generate "bitpoll-settings.json" cfg.settings;

  timeout = toString cfg.timeout;
  gunicorn = lib.concatStringsSep " " [
    "${python}/bin/gunicorn"
    # It warms the app in the master, so that no worker, and no restart,
    # answers a first request cold.
    "--config ${../shim/gunicorn.conf.py}"
    "--workers ${toString cfg.workers}"
    "--timeout ${timeout}"
    "--graceful-timeout ${timeout}"
    # gunicorn 25+ opens a control socket under $HOME by default: the
    # service has no home, and needs no runtime control.
    "--no-control-socket"
    "--access-logfile -"
    "--error-logfile -"
    # The app is imported before systemd hears READY=1.
    "--preload"
    "${pkg.project}.wsgi"
  ];

  # Runs the migrations of this package once for its database: a stamp
  # named after the store path and the database settings marks them done,
  # so a restart skips them, and an upgrade or another database runs them.
  migrationStamp = "${builtins.baseNameOf pkg}-${
    builtins.substring 0 12 (builtins.hashString "sha256" (builtins.toJSON cfg.settings.database))
  }";
  migrate = pkgs.writeShellScript "bitpoll-migrate" ''
    set -eu
    stamp=${stateDir}/migrated/${migrationStamp}
    if [ -e "$stamp" ]; then
      echo "migrations of ${migrationStamp} already applied"
      exit 0
    fi
    ${lib.optionalString isSqlite ''
      # A snapshot first, so that a rollback can restore the data the
      # old code knew.
      if [ -e ${stateDir}/db.sqlite3 ]; then
        mkdir -p ${stateDir}/snapshots
        ${python}/bin/python -c 'import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); s.backup(d); d.close()' \
          ${stateDir}/db.sqlite3 "${stateDir}/snapshots/db-$(date +%Y%m%dT%H%M%S).sqlite3"
      fi
    ''}
    ${python}/bin/python ${appDir}/manage.py migrate --noinput
    mkdir -p ${stateDir}/migrated
    touch "$stamp"
  '';

  # The file system the units see: an empty root with the store (which
  # holds the app, the interpreter and the settings file) and the few
  # files of /etc that name resolution and TLS need, all read-only.
  view = {
    RootDirectory = "/var/empty";
    TemporaryFileSystem = "/";
    BindReadOnlyPaths = [
      "/nix/store"
      "-/etc/hosts"
      "-/etc/resolv.conf"
      "-/etc/nsswitch.conf"
      "-/etc/host.conf"
      "-/etc/gai.conf"
      "-/etc/localtime"
      "-/etc/ssl/certs"
      "-/etc/static/ssl/certs"
    ]
    # A PostgreSQL server's socket directory (createLocally's too).
    ++ optional (databaseSocketDir != null) databaseSocketDir;
  }
  // lib.optionalAttrs privateNetwork {
    # Only a loopback device of the units' own: the listening socket is
    # passed in by bitpoll.socket, so serving needs no network.
    PrivateNetwork = true;
  }
  // lib.optionalAttrs (!outboundOpen) {
    IPAddressDeny = "any";
    IPAddressAllow = [ "localhost" ] ++ cfg.outboundAllow;
  };

  # What the service and the migration unit share: user, state, settings,
  # credentials and confinement.
  common =
    hardening
    // view
    // {
      User = "bitpoll";
      StateDirectory = "bitpoll";
      StateDirectoryMode = "0700";
      WorkingDirectory = appDir;
      Environment = [
        "BITPOLL_SETTINGS_FILE=${settingsFile}"
        "BITPOLL_STATIC_ROOT=${cfg.settings.static_root}"
        # The store is read-only and already compiled.
        "PYTHONDONTWRITEBYTECODE=1"
        "PYTHONUNBUFFERED=1"
      ];
      LoadCredential = credentials;
    };

  secretUnits = optionals generateSecrets [ "bitpoll-secrets.service" ];

  # common as systemd-run properties, one per value, as NixOS writes them
  # into unit files.
  unitValue = v: if builtins.isBool v then lib.boolToString v else toString v;
  manageProperties = lib.concatLists (
    lib.mapAttrsToList (name: value: map (v: "${name}=${unitValue v}") (lib.toList value)) common
  );

  # Management commands as the service user, in a transient unit (the
  # dynamic user exists only in one) with everything bitpoll.service runs
  # with but its life cycle: the sandbox, the settings and the credentials,
  # as the Go installer's manage command does.
  manage = pkgs.writeShellScriptBin "bitpoll-manage" ''
    set -eu
    if [ "$(id -u)" != 0 ]; then
      echo "bitpoll-manage: run it as root (sudo bitpoll-manage $*): it starts a transient unit as the service user" >&2
      exit 1
    fi
    if [ -t 0 ] && [ -t 1 ]; then io=--pty; else io=--pipe; fi
    exec ${config.systemd.package}/bin/systemd-run --quiet --wait --collect --service-type=exec "$io" \
      --unit="bitpoll-manage-$$" \
      ${lib.concatMapStringsSep " " (p: "-p ${lib.escapeShellArg p}") manageProperties} \
      -- ${python}/bin/python ${appDir}/manage.py "$@"
  '';
in
{
  # Options that bitpoll.toml says another way: the same setting has one
  # name on each side (the README's table pairs them).
  imports = [
    (lib.mkRemovedOptionModule [ "services" "bitpoll" "outboundAny" ] ''
      Write outboundAllow = [ "any" ], as outbound.allow in bitpoll.toml.
    '')
  ]
  ++ map
    (
      name:
      lib.mkRemovedOptionModule [ "services" "bitpoll" "database" name ] ''
        Set services.bitpoll.database.url, as database.url in bitpoll.toml:
        postgresql://USER@HOST:PORT/NAME, or null for SQLite.
      ''
    )
    [
      "type"
      "name"
      "user"
      "host"
      "port"
    ];

  options.services.bitpoll = {
    enable = mkEnableOption "Bitpoll, the Django app for polls and meeting scheduling";

    package = mkOption {
      type = types.package;
      default = packageFor pkgs;
      defaultText = lib.literalMD "Bitpoll built from the flake's `bitpoll.lock` with this system's pkgs";
      description = "The Bitpoll package: the app built from bitpoll.lock.";
    };

    port = mkOption {
      type = types.port;
      default = 8000;
      example = 8080;
      description = "The TCP port bitpoll.socket listens on.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "::";
      description = ''
        The IP address bitpoll.socket listens on; "::" is every address,
        IPv4's too. Not a host name: systemd binds addresses and does not
        resolve names. Unused with listenSocket.
      '';
    };

    listenSocket = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/bitpoll/bitpoll.sock";
      description = ''
        The absolute path of a unix socket that bitpoll.socket listens on
        instead of listenAddress and port, for a proxy on this host.
      '';
    };

    listenSocketGroup = mkOption {
      type = types.nullOr (types.strMatching "[a-z_][a-z0-9_-]*");
      default = null;
      example = "nginx";
      description = ''
        The group that may connect to listenSocket (mode 0660); null lets
        every user connect (mode 0666).
      '';
    };

    allowedHosts = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "bitpoll.example.org" ];
      description = "The host names Bitpoll answers to (Django's ALLOWED_HOSTS).";
    };

    secretKeyFile = mkOption {
      type = secretPath;
      default = null;
      example = "/etc/bitpoll/secret";
      description = ''
        A file holding Django's SECRET_KEY, read by systemd (LoadCredential=)
        and never copied to the store. Null generates one in
        ${secretsDir}/secret_key on first start.
      '';
    };

    fieldEncryptionKeyFile = mkOption {
      type = secretPath;
      default = null;
      example = "/etc/bitpoll/field-key";
      description = ''
        A file holding the Fernet key that encrypts poll fields
        (FIELD_ENCRYPTION_KEY). Null generates one in
        ${secretsDir}/field_encryption_key on first start. Losing it loses
        the encrypted data: back it up.
      '';
    };

    emailPasswordFile = mkOption {
      type = secretPath;
      default = null;
      description = "A file holding the SMTP password (settings.email holds the rest).";
    };

    workers = mkOption {
      type = types.ints.between 1 256;
      default = 2;
      description = "The number of gunicorn worker processes.";
    };

    timeout = mkOption {
      type = types.ints.between 1 3600;
      default = 30;
      description = "gunicorn's worker timeout, in seconds; stopping waits 10 s longer.";
    };

    outboundAllow = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "192.0.2.25" ];
      description = ''
        Addresses or prefixes, beyond localhost, the service may connect to
        (IPAddressAllow=): a mail relay, a remote PostgreSQL, CalDAV servers.
        [ "any" ] drops the allow-list: the service may connect anywhere.
        Empty, with no mail and a local database, the units get
        PrivateNetwork=yes: no network at all, not even localhost.
      '';
    };

    database = {
      url = mkOption {
        type = types.nullOr types.str;
        default = if cfg.database.createLocally then localDatabaseURL else null;
        defaultText = lib.literalMD "null (SQLite in ${stateDir}); with `createLocally`, `${localDatabaseURL}`";
        example = "postgresql://bitpoll@db.example.org/bitpoll";
        description = ''
          The database: null for SQLite in ${stateDir}, or a URL,
          postgresql://USER@HOST:PORT/NAME (?host=/run/postgresql for a
          unix socket) or sqlite:////var/lib/bitpoll/NAME. No password:
          that goes in passwordFile.
        '';
      };
      createLocally = mkOption {
        type = types.bool;
        default = false;
        description = "Create the PostgreSQL database and its user on this host (peer authentication over /run/postgresql).";
      };
      passwordFile = mkOption {
        type = secretPath;
        default = null;
        description = "A file holding the PostgreSQL password (loaded as the credential db_password).";
      };
    };

    nginx = {
      enable = mkEnableOption "an nginx virtual host that proxies to Bitpoll";
      hostName = mkOption {
        type = types.str;
        default = lib.head (cfg.allowedHosts ++ [ "localhost" ]);
        defaultText = lib.literalExpression "builtins.head config.services.bitpoll.allowedHosts";
        description = "The nginx virtual host's name.";
      };
    };

    settings = mkOption {
      default = { };
      description = ''
        The settings shim's JSON settings file (the keys of the Go type
        shim.Settings: base_url, allowed_hosts, database, static_root,
        media_root, email, time_zone, django, ...). Secrets never go here:
        they come from the *File options through LoadCredential=.
      '';
      example = lib.literalExpression ''
        {
          base_url = "https://bitpoll.example.org";
          time_zone = "Europe/Berlin";
          email = { host = "mail.example.org"; port = 587; use_tls = true; from = "bitpoll@example.org"; };
        }
      '';
      type = types.submodule {
        freeformType = format.type;
        options = {
          base_url = mkOption {
            type = types.str;
            default =
              if cfg.nginx.enable then
                "http://${cfg.nginx.hostName}"
              else
                "http://${lib.head (cfg.allowedHosts ++ [ "localhost" ])}:${toString cfg.port}";
            defaultText = lib.literalExpression ''"http://''${head allowedHosts}:''${toString port}"'';
            description = "The public URL; its origin is a trusted CSRF origin, https turns on secure cookies and HSTS.";
          };
          allowed_hosts = mkOption {
            type = types.listOf types.str;
            default = cfg.allowedHosts;
            defaultText = lib.literalExpression "config.services.bitpoll.allowedHosts";
            description = "Django's ALLOWED_HOSTS.";
          };
          database = mkOption {
            type = format.type;
            default = databaseSettings;
            defaultText = lib.literalMD "from `services.bitpoll.database`";
            description = "The database the shim connects to.";
          };
          static_root = mkOption {
            type = types.str;
            default = "${pkg}/${pkg.staticDir}";
            defaultText = lib.literalExpression ''"''${package}/share/bitpoll/static"'';
            description = "The collected static files, built into the package.";
          };
          media_root = mkOption {
            type = types.str;
            default = "${stateDir}/media";
            description = "Uploaded files.";
          };
        };
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = listenAddressError == null;
          message = "services.bitpoll.listenAddress ${toString listenAddressError}.";
        }
        {
          assertion = outboundErrors == [ ];
          message = "services.bitpoll.outboundAllow: ${lib.concatStringsSep "; " outboundErrors}.";
        }
        {
          assertion = listenSocketError == null;
          message = "services.bitpoll.listenSocket ${toString listenSocketError}.";
        }
        {
          # It goes into Environment=, a unit line.
          assertion = builtins.match "/[A-Za-z0-9._+@/-]*" cfg.settings.static_root != null;
          message = "services.bitpoll.settings.static_root ${builtins.toJSON cfg.settings.static_root} is not a plain absolute path; use letters, digits and . _ + @ / - only.";
        }
        {
          assertion = cfg.listenSocketGroup != null -> isUnixListen;
          message = "services.bitpoll.listenSocketGroup is only used with listenSocket: set listenSocket, or unset listenSocketGroup.";
        }
        {
          assertion = databaseURLError == null;
          message = "services.bitpoll.database.url ${toString databaseURLError}.";
        }
        {
          assertion = cfg.database.passwordFile != null -> cfg.database.url != null;
          message = "services.bitpoll.database.passwordFile is for PostgreSQL: set database.url, or unset passwordFile.";
        }
        {
          assertion = cfg.allowedHosts != [ ];
          message = ''services.bitpoll.allowedHosts is empty: list the host names Bitpoll is served under, e.g. allowedHosts = [ "bitpoll.example.org" ];'';
        }
        {
          assertion = cfg.nginx.enable -> hasModule "nginx";
          message = "services.bitpoll.nginx.enable needs the NixOS nginx module, which this system's nixpkgs lacks: turn it off and put another proxy in front.";
        }
        {
          assertion = cfg.nginx.enable -> builtins.elem cfg.nginx.hostName cfg.allowedHosts;
          message = ''services.bitpoll.nginx.hostName ${builtins.toJSON cfg.nginx.hostName} is not in allowedHosts, so Django would answer nginx's requests with 400: add it to allowedHosts.'';
        }
        {
          assertion = cfg.database.createLocally -> hasModule "postgresql";
          message = "services.bitpoll.database.createLocally needs the NixOS PostgreSQL module, which this system's nixpkgs lacks: point database.host at an existing server instead.";
        }
        {
          assertion = cfg.database.createLocally -> cfg.database.url == localDatabaseURL;
          message = "services.bitpoll.database.createLocally connects as the service user over /run/postgresql: leave database.url at ${builtins.toJSON localDatabaseURL} (it is ${builtins.toJSON cfg.database.url}), or turn createLocally off for another server.";
        }
        {
          assertion = !(cfg.settings ? django && (cfg.settings.django ? SECRET_KEY || cfg.settings.django ? FIELD_ENCRYPTION_KEY));
          message = "services.bitpoll.settings.django sets a secret, which would land in the world-readable store: use secretKeyFile and fieldEncryptionKeyFile instead.";
        }
        {
          assertion = !(cfg.settings.database ? password);
          message = "services.bitpoll.settings.database.password would land in the world-readable store: use database.passwordFile instead.";
        }
      ];

      warnings = optional outboundOpen "services.bitpoll.outboundAllow = [ \"any\" ]: bitpoll.service has no IP allow-list, so systemd-analyze security rates it above 1.0; list the mail relay's and CalDAV servers' addresses instead.";

      environment.systemPackages = [ manage ];

      systemd.sockets.bitpoll = {
        description = "Bitpoll listening socket";
        wantedBy = [ "sockets.target" ];
        listenStreams = [ listenStream ];
        socketConfig =
          if isUnixListen then
            lib.optionalAttrs (cfg.listenSocketGroup != null) {
              SocketGroup = cfg.listenSocketGroup;
            }
            // {
              SocketMode = if cfg.listenSocketGroup != null then "0660" else "0666";
              RemoveOnStop = true;
            }
          else
            {
              NoDelay = true;
            }
            // lib.optionalAttrs (cfg.listenAddress == "::") {
              # Both families on one socket, whatever the host's sysctl says.
              BindIPv6Only = "both";
            };
      };

      systemd.services.bitpoll-migrate = {
        description = "Bitpoll database migrations, once per generation";
        before = [ "bitpoll.service" ];
        # postgresql.target, not .service: it includes postgresql-setup,
        # which creates the database and user (ensureDatabases, ensureUsers).
        after = [ "network.target" ] ++ secretUnits ++ optional cfg.database.createLocally "postgresql.target";
        requires = secretUnits ++ optional cfg.database.createLocally "postgresql.target";
        serviceConfig = common // {
          Type = "oneshot";
          ExecStart = migrate;
          TimeoutStartSec = "infinity";
        };
      };

      systemd.services.bitpoll = {
        description = "Bitpoll, polls and meeting scheduling";
        requires = [
          "bitpoll.socket"
          "bitpoll-migrate.service"
        ];
        after = [
          "bitpoll.socket"
          "bitpoll-migrate.service"
          "network.target"
        ];
        wantedBy = [ "multi-user.target" ];
        # A new package is a new generation: restarting runs its migrations.
        restartTriggers = [ pkg ];
        # Restart in place on a switch, never stop-then-start: a stop would
        # take bitpoll.socket down with the service, and connections in
        # that window would be refused. With the socket held, they wait.
        stopIfChanged = false;
        serviceConfig = common // {
          Type = "notify";
          NotifyAccess = "main";
          Sockets = "bitpoll.socket";
          ExecStart = gunicorn;
          # gunicorn reloads its workers on SIGHUP.
          ExecReload = "${pkgs.coreutils}/bin/kill -s HUP $MAINPID";
          Restart = "on-failure";
          RestartSec = "1s";
          TimeoutStopSec = "${toString (cfg.timeout + 10)}s";
        };
      };
    }

    (mkIf generateSecrets {
      # Generated once, root only, like the Go installer's; systemd hands
      # them to the units through LoadCredential=.
      systemd.services.bitpoll-secrets = {
        description = "Generate Bitpoll's secrets once";
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          UMask = "0077";
        };
        path = [ pkgs.coreutils ];
        script = ''
          mkdir -p ${secretsDir}
          chmod 0700 ${secretsDir}
          # The Go installer's formats (service.WriteSecrets): a Django
          # SECRET_KEY of 50 characters from Django's alphabet for keys, and
          # a Fernet key, the URL-safe base64 of 32 random bytes.
          secret_key() {
            head -c 4096 /dev/urandom | LC_ALL=C tr -dc 'abcdefghijklmnopqrstuvwxyz0123456789!@#%^&*(=+)_-' | head -c 50
          }
          field_encryption_key() {
            head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_'
          }
          gen() {
            if [ ! -s ${secretsDir}/$1 ]; then
              "$1" > ${secretsDir}/$1.tmp
              if [ "$(wc -c < ${secretsDir}/$1.tmp)" != "$2" ]; then
                echo "bitpoll-secrets: generating $1 gave $(wc -c < ${secretsDir}/$1.tmp) characters, want $2" >&2
                exit 1
              fi
              mv ${secretsDir}/$1.tmp ${secretsDir}/$1
            fi
          }
          ${lib.optionalString (cfg.secretKeyFile == null) "gen secret_key 50"}
          ${lib.optionalString (cfg.fieldEncryptionKeyFile == null) "gen field_encryption_key 44"}
        '';
      };
    })

    (lib.optionalAttrs (hasModule "postgresql") (mkIf cfg.database.createLocally {
      services.postgresql = {
        enable = true;
        ensureDatabases = [ "bitpoll" ];
        ensureUsers = [
          {
            name = "bitpoll";
            ensureDBOwnership = true;
          }
        ];
      };
    }))

    (lib.optionalAttrs (hasModule "nginx") (mkIf cfg.nginx.enable {
      # Only a proxy: WhiteNoise serves the static files from the package,
      # compressed and cached, as with the Go installer's nginx block.
      services.nginx = {
        enable = true;
        virtualHosts.${cfg.nginx.hostName} = {
          locations."/" = {
            proxyPass = "http://${upstream}";
            recommendedProxySettings = true;
            # Past gunicorn's timeout, so that gunicorn's error wins.
            extraConfig = "proxy_read_timeout ${toString (cfg.timeout + 5)}s;";
          };
          extraConfig = "client_max_body_size 10m;";
        };
      };
    }))
  ]);
}
