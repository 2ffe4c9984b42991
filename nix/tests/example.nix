# The README's example, on a machine that only needs to evaluate.
{
  services.bitpoll = {
    enable = true;
    port = 8080;
    allowedHosts = [ "bitpoll.company.com" ];
    secretKeyFile = "/etc/bitpoll/secret";
  };

  boot.loader.grub.enable = false;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  system.stateVersion = "25.11";
}
