# The Go installer, built from this repository with its vendored modules.
# vendorHash lives in ./vendor-hash, one line, so that a test can recompute
# it from go.mod and go.sum and say when it is stale.
{
  lib,
  buildGoModule,
}:

let
  root = ../.;
  # Go sources, the module files and what the binary embeds; nothing of
  # nix/ but its tests, so editing a Nix file does not rebuild the binary.
  fileset = lib.fileset.unions [
    (lib.fileset.fileFilter (f: f.hasExt "go" || f.name == "go.mod" || f.name == "go.sum") root)
    (root + "/bitpoll.lock")
    (root + "/shim/settings_local.py")
    (root + "/shim/gunicorn.conf.py")
    (root + "/config/default.toml")
    (root + "/migration/helper.py")
    (root + "/unitgen/hardening.toml")
    (root + "/pyenv/build/runner.py")
  ];
in
buildGoModule {
  pname = "bitpoll-install";
  version = "0.1.0";
  src = lib.fileset.toSource { inherit root fileset; };
  vendorHash = lib.fileContents ./vendor-hash;
  subPackages = [ "cmd/bitpoll-install" ];
  ldflags = [
    "-s"
    "-X main.version=0.1.0"
  ];
  # The test suite talks to PyPI and runs Python; CI runs it (make test).
  doCheck = false;
  meta = {
    description = "Deploy Bitpoll reproducibly from bitpoll.lock, without Nix";
    mainProgram = "bitpoll-install";
  };
}
