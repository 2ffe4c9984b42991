# The Python environment of bitpoll.lock for the host's target: every
# locked wheel fetched by its URL and sha256 and installed as is, manylinux
# wheels patched to find their libraries in the store, and each sdist the
# lock selects for this target (an sdist-only package, or one whose
# sdist-targets name it, like libsass on aarch64) built from source with the
# build-only packages the lock names (as the Go installer does). No nixpkgs Python package is used, so the set equals the lock's.
{
  lib,
  stdenv,
  fetchurl,
  autoPatchelfHook,
  zlib,
  python3,
  lockFile,
}:

let
  selection = (import ./lock.nix).select {
    lock = builtins.fromTOML (builtins.readFile lockFile);
    python = python3.pythonVersion;
    arch = stdenv.hostPlatform.parsed.cpu.name;
  };

  fetch =
    f:
    fetchurl {
      # The installer takes the wheel's tags from its file name.
      name = f.file;
      inherit (f) url sha256;
    };

  # One locked wheel, installed without its dependencies: the lock already
  # lists the whole closure, and the environment joins them.
  wheel =
    f:
    python3.pkgs.buildPythonPackage {
      pname = f.name;
      inherit (f) version;
      format = "wheel";
      src = fetch f;
      # Binary wheels bundle what they need beyond the C and C++ runtime.
      nativeBuildInputs = lib.optional (!lib.hasSuffix "-any.whl" f.file) autoPatchelfHook;
      buildInputs = lib.optionals (!lib.hasSuffix "-any.whl" f.file) [
        stdenv.cc.cc.lib
        zlib
      ];
      dontCheckRuntimeDeps = true;
      doCheck = false;
      passthru.locked = f;
    };

  buildSystem = map wheel selection.buildPackages;

  # An sdist entry, built into a wheel with the locked build requirements.
  sdist =
    f:
    python3.pkgs.buildPythonPackage {
      pname = f.name;
      inherit (f) version;
      pyproject = true;
      src = fetch f;
      build-system = buildSystem;
      dontCheckRuntimeDeps = true;
      doCheck = false;
      passthru.locked = f;
    };

  packages = map (f: if f.sdist then sdist f else wheel f) selection.packages;
in
python3.withPackages (_: packages)
// {
  inherit selection packages;
  # The files this environment is made of, for tests and audits.
  lockedFiles = map (p: p.locked) packages ++ map (p: p.locked) buildSystem;
}
