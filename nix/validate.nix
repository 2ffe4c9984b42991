# What the module checks of the options that render into unit files, with
# the Go side's rules (config.Validate): IP addresses as Go's
# netip.ParseAddr reads them (no zones), prefixes as netip.ParsePrefix, and
# unix socket paths in unitgen's characters. Builtins only, so that the
# tests evaluate it with any Nix, without nixpkgs.
let
  inherit (builtins)
    all
    elemAt
    filter
    fromJSON
    genList
    head
    length
    match
    split
    stringLength
    substring
    ;

  # split's separators come back as lists between the parts.
  splitOn = sep: s: filter builtins.isString (split sep s);

  isIPv4 =
    s:
    let
      parts = splitOn "\\." s;
    in
    length parts == 4
    && all (p: match "0|[1-9][0-9]{0,2}" p != null && fromJSON p <= 255) parts;

  hexGroup = g: match "[0-9a-fA-F]{1,4}" g != null;

  isIPv6 =
    s:
    let
      halves = splitOn "::" s;
      groupsOf = h: if h == "" then [ ] else splitOn ":" h;
      groups = builtins.concatLists (map groupsOf halves);
      n = length groups;
      lastHalf = elemAt halves (length halves - 1);
      # An IPv4 tail ("::ffff:192.0.2.1") stands for two groups.
      v4tail = n > 0 && lastHalf != "" && isIPv4 (elemAt groups (n - 1));
      hex = if v4tail then genList (i: elemAt groups i) (n - 1) else groups;
      count = length hex + (if v4tail then 2 else 0);
    in
    match ".*:.*" s != null
    && length halves <= 2
    && all hexGroup hex
    && (if length halves == 2 then count <= 7 else count == 8);

  isIP = s: isIPv4 s || isIPv6 s;

  # "ADDR/BITS", BITS within the address's length.
  isPrefix =
    s:
    let
      m = match "([^/]+)/(0|[1-9][0-9]{0,2})" s;
      addr = head m;
      bits = fromJSON (elemAt m 1);
    in
    m != null && (isIPv4 addr && bits <= 32 || isIPv6 addr && bits <= 128);

  # A prefix of length 0 ("0.0.0.0/0", "::/0") is every address.
  isEverything = s: match ".*/0" s != null;

  unitPath = s: match "/[A-Za-z0-9._+@/-]*" s != null;
in
{
  inherit isIPv4 isIPv6 isIP isPrefix;

  # Why listenAddress cannot go into ListenStream=, or null when it can.
  listenAddressError =
    a:
    if a == "" || isIP a then
      null
    else if substring 0 1 a == "/" then
      (
        if unitPath a && stringLength a < 108 then
          null
        else
          "${builtins.toJSON a} is not a usable unix socket path: use letters, digits and . _ + @ / - only, fewer than 108 characters"
      )
    else
      "${builtins.toJSON a} is not an IP address, and systemd's ListenStream= does not resolve names: write it like \"127.0.0.1\" or \"::1\", \"\" for every address, or an absolute path for a unix socket";

  # What in a configuration needs the network, by option, as the Go
  # config's NetworkNeeds says it: mail (settings.email, unless its backend
  # is "console"; Django's SMTP default is localhost port 25), a database
  # over TCP (SQLite and PostgreSQL over a unix socket need none), and the
  # outbound allow-list. Empty means the units get PrivateNetwork=yes.
  networkNeeds =
    {
      settings,
      outboundAllow,
      outboundAny,
    }:
    let
      db = settings.database or { };
      email = settings.email or null;
      url = db.url or null;
      # No host, and a socket directory in the host parameter, as Go's
      # url.Parse reads it (the slash may be percent-encoded).
      localPostgresURL = "postgres(ql)?://([^@/?#]*@)?/[^?#]*[?](.*&)?host=(/|%2[fF]).*";
      dbLocal =
        if url != null then
          match "sqlite:.*" url != null || match localPostgresURL url != null
        else
          (db.engine or "") == "sqlite" || substring 0 1 (db.host or "") == "/";
    in
    filter (n: n != null) [
      (if email != null && (email.backend or "smtp") != "console" then "settings.email" else null)
      (if dbLocal then null else "settings.database")
      (if outboundAllow != [ ] then "outboundAllow" else null)
      (if outboundAny then "outboundAny" else null)
    ];

  # Why an outboundAllow entry cannot go into IPAddressAllow=, or null.
  outboundError =
    e:
    if e == "any" then
      "\"any\" is not an address: set outboundAny = true to open outbound traffic on purpose"
    else if isPrefix e && isEverything e then
      "${builtins.toJSON e} allows every address: set outboundAny = true to open outbound traffic on purpose"
    else if isIP e || isPrefix e then
      null
    else
      "${builtins.toJSON e} is not an IP address or prefix (like \"192.0.2.25\" or \"2001:db8::/32\"); systemd's IPAddressAllow= does not resolve names";
}
