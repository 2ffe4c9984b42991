{
  description = "Bitpoll, deployed from bitpoll.lock: the app with its locked wheels, the Go installer and a NixOS module";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # The app source at the commit bitpoll.lock pins; flake.lock adds its
    # NAR hash. The package refuses an input of another commit.
    bitpoll-src = {
      url = "github:fsinfuhh/Bitpoll/6d863fecf2489bbb8e6239936849a594bef489f1";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      bitpoll-src,
    }:
    let
      inherit (nixpkgs) lib;
      # Only the systems bitpoll.lock has wheels for: one per CPU of its
      # targets. To serve another, lock it too (bitpoll-install lock
      # --target cp313-aarch64 ...).
      systems = (import ./nix/lock.nix).systems (builtins.fromTOML (builtins.readFile ./bitpoll.lock));
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      bitpollFor = pkgs: pkgs.callPackage ./nix/package.nix { appSrc = bitpoll-src; };
    in
    {
      packages = forAllSystems (pkgs: {
        bitpoll = bitpollFor pkgs;
        bitpoll-install = pkgs.callPackage ./nix/bitpoll-install.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.bitpoll;
      });

      nixosModules.default = import ./nix/module.nix { packageFor = bitpollFor; };

      # The module with the README's example, evaluated on x86_64-linux.
      nixosConfigurations.example = lib.nixosSystem {
        modules = [
          self.nixosModules.default
          ./nix/tests/example.nix
          { nixpkgs.hostPlatform = "x86_64-linux"; }
        ];
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/shell.nix {
          bitpoll = self.packages.${pkgs.stdenv.hostPlatform.system}.bitpoll;
        };
      });

      apps = forAllSystems (
        pkgs:
        let
          installer = self.packages.${pkgs.stdenv.hostPlatform.system}.bitpoll-install;
        in
        {
          default = self.apps.${pkgs.stdenv.hostPlatform.system}.bitpoll-install;
          bitpoll-install = {
            type = "app";
            program = lib.getExe installer;
            meta.description = "Run the Go installer (lock, install, run, dev, audit)";
          };
        }
      );

      # nixfmt-tree formats the whole tree on `nix fmt`; older nixpkgs have
      # only nixfmt.
      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree or pkgs.nixfmt);

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
        in
        {
          inherit (self.packages.${system}) bitpoll bitpoll-install;
          # The example's units, rendered: evaluating this evaluates the module.
          module-units = pkgs.writeText "bitpoll-example-units" (
            lib.concatMapStringsSep "\n" (
              u: "# ${u}\n${self.nixosConfigurations.example.config.systemd.units.${u}.text}"
            ) [ "bitpoll.socket" "bitpoll.service" "bitpoll-migrate.service" ]
          );
          vm = pkgs.testers.runNixOSTest (import ./nix/tests/vm.nix { module = self.nixosModules.default; });
        }
      );
    };
}
