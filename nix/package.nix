# Bitpoll as bitpoll.lock pins it: the app tree at the locked commit, the
# settings shim the Go installer embeds, the locked Python environment,
# collected static files and compiled translations.
#
# The source: `appSrc` when given (the flake passes its locked input);
# else, with the lock's nar-hash, a fixed-output fetchgit; else
# builtins.fetchGit by the locked commit, which fetches while evaluating.
{
  lib,
  stdenv,
  callPackage,
  fetchgit,
  gettext,
  gitMinimal,
  python3,
  lockFile ? ../bitpoll.lock,
  settingsShim ? ../shim/settings_local.py,
  appSrc ? null,
}:

let
  python = callPackage ./python.nix { inherit python3 lockFile; };
  # Read apart from the wheel selection, so that the name and source
  # evaluate even on a system the lock has no target for.
  lock = builtins.fromTOML (builtins.readFile lockFile);
  app = (import ./lock.nix).appPin lock;

  # The source must be the locked tree. Evaluation can compare a commit or
  # a NAR hash when the input has them (checkSource), but not a git tree
  # id, which is what every lock pins: that is checked first thing in the
  # build, by git on the source as given, so that an overridden or edited
  # tree (a `path:` input has neither commit nor NAR hash) is refused.
  verifyTree = ''
    export HOME=$NIX_BUILD_TOP/tree-check GIT_CONFIG_NOSYSTEM=1
    mkdir -p "$HOME"
    printf '[safe]\n\tdirectory = *\n' > "$HOME/.gitconfig"
    git init -q "$HOME/repo"
    git -C "$src" --git-dir="$HOME/repo/.git" --work-tree="$src" add -A -f
    tree=$(git --git-dir="$HOME/repo/.git" write-tree)
    if [ "$tree" != ${lib.escapeShellArg app.tree} ]; then
      echo "the app source $src has git tree $tree, but bitpoll.lock pins ${app.name} ${app.version} at tree ${app.tree}: it is not the locked source; use ${
        if app.commit != "" then "the locked commit ${app.commit}" else "that tree"
      }, or re-lock this one (bitpoll-install lock --app-source DIR)" >&2
      exit 1
    fi
    echo "app source: git tree $tree, as bitpoll.lock pins"
  '';

  src =
    if appSrc != null then
      checkSource appSrc
    else if app.narHash != null then
      fetchgit {
        inherit (app) url;
        rev = app.commit;
        hash = app.narHash;
      }
    else if app.commit != "" then
      builtins.fetchGit {
        inherit (app) url;
        rev = app.commit;
        allRefs = true;
      }
    else
      throw "bitpoll.lock pins ${app.name} ${app.version} by tree ${app.tree} only (no commit, no nar-hash): pass appSrc, a path to that tree";

  # A flake input carries its commit and NAR hash: both must be the lock's.
  checkSource =
    s:
    if s ? rev && app.commit != "" && s.rev != app.commit then
      throw "the app source is commit ${s.rev}, but bitpoll.lock pins ${app.commit}: point the bitpoll-src input at github:fsinfuhh/Bitpoll/${app.commit}"
    else if s ? narHash && app.narHash != null && s.narHash != app.narHash then
      throw "the app source has NAR hash ${s.narHash}, but bitpoll.lock pins ${app.narHash}: it is not the locked tree"
    else
      s;

  # Build-time settings for collectstatic: a throwaway database and keys;
  # nothing of them reaches the output but the collected files.
  buildSettings = builtins.toJSON {
    base_url = "http://localhost";
    allowed_hosts = [ "localhost" ];
    database = {
      engine = "sqlite";
      path = "@tmp@/build.sqlite3";
    };
    static_root = "@out@/share/bitpoll/static";
    media_root = "@tmp@/media";
  };
in
stdenv.mkDerivation {
  pname = app.name;
  inherit (app) version;
  inherit src;

  nativeBuildInputs = [
    python
    gettext
    gitMinimal
  ];

  preUnpack = verifyTree;

  dontConfigure = true;

  buildPhase = ''
    runHook preBuild

    # The Django project: the folder beside manage.py whose settings.py
    # star-imports settings_local, as the Go installer finds it.
    project=$(grep -l settings_local */settings.py | sed 's,/settings.py$,,')
    if [ "$(printf '%s\n' "$project" | grep -c .)" != 1 ]; then
      echo "want exactly one project folder whose settings.py imports settings_local, found: $project" >&2
      exit 1
    fi
    if [ "$project" != bitpoll ]; then
      echo "the Django project is $project, but passthru.project says bitpoll: update package.nix" >&2
      exit 1
    fi
    cp ${settingsShim} "$project/settings_local.py"

    tmp=$NIX_BUILD_TOP/settings
    mkdir -p "$tmp/secrets" "$tmp/media"
    export BITPOLL_SETTINGS_FILE=$tmp/settings.json
    export BITPOLL_SECRETS_DIR=$tmp/secrets
    export PYTHONDONTWRITEBYTECODE=1
    echo ${lib.escapeShellArg buildSettings} | sed -e "s,@out@,$out," -e "s,@tmp@,$tmp," > "$BITPOLL_SETTINGS_FILE"
    printf '%s' build-time-secret-key-not-used-at-runtime > "$BITPOLL_SECRETS_DIR/secret_key"
    printf '%s' MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= > "$BITPOLL_SECRETS_DIR/field_encryption_key"

    python manage.py collectstatic --noinput
    python manage.py compilemessages

    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    mkdir -p $out/share/bitpoll
    cp -r . $out/share/bitpoll/app
    python -m compileall -q $out/share/bitpoll/app
    runHook postInstall
  '';

  # Where the NixOS module and the dev shell find things.
  passthru = {
    inherit python;
    inherit (python) selection lockedFiles;
    appDir = "share/bitpoll/app";
    staticDir = "share/bitpoll/static";
    # The Django project module, as the Go side finds it; Bitpoll's is
    # "bitpoll".
    project = "bitpoll";
  };

  meta = {
    description = "Bitpoll, polls and meeting scheduling, with the wheels bitpoll.lock pins";
    homepage = app.url;
    license = lib.licenses.gpl3Only;
    # The systems the lock has wheels for.
    platforms = (import ./lock.nix).systems lock;
  };
}
