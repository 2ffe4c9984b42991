# Boots a VM with services.bitpoll, waits for the units, creates nothing by
# hand and fetches the front page through the socket; then logs what
# systemd-analyze security thinks of the service.
{ module }:
{
  name = "bitpoll";

  nodes.machine = {
    imports = [ module ];
    services.bitpoll = {
      enable = true;
      port = 8080;
      allowedHosts = [ "localhost" ];
    };
    virtualisation.memorySize = 1024;
  };

  testScript = ''
    machine.wait_for_unit("sockets.target")
    machine.wait_for_open_port(8080)
    machine.succeed("curl --fail --silent --show-error http://localhost:8080/ -o /tmp/index.html")
    machine.succeed("grep -qi bitpoll /tmp/index.html")
    machine.succeed("systemctl is-active bitpoll.service")
    machine.succeed("test -s /etc/bitpoll/secrets/secret_key")
    machine.succeed("test $(stat -c %a /etc/bitpoll/secrets/secret_key) = 600")
    machine.succeed("bitpoll-manage check --deploy --fail-level ERROR")
    # A restart keeps the migration stamp: the second start skips them.
    machine.succeed("systemctl restart bitpoll.service")
    machine.succeed("journalctl -u bitpoll-migrate.service | grep -q 'already applied'")
    machine.log(machine.succeed("systemd-analyze security bitpoll.service || true"))
  '';
}
