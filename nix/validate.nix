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
    replaceStrings
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

  # As Go's path.Clean leaves it: no empty, "." or ".." parts, and no
  # trailing slash but for "/" itself.
  isClean = p: p == "/" || match ".*(//|/[.]/|/[.][.]/).*" p == null && match ".*(/|/[.]|/[.][.])" p == null;

  # A port as Go's strconv.Atoi reads it, 1 to 65535.
  portOK =
    p:
    let
      digits = match "0*([0-9]{1,5})" p;
      n = if digits == null then 0 else fromJSON (head digits);
    in
    n >= 1 && n <= 65535;

  stateDir = "/var/lib/bitpoll";
in
{
  inherit isIPv4 isIPv6 isIP isPrefix;

  # Why listenAddress cannot go into ListenStream=, or null when it can:
  # an IP address, as listen.address in bitpoll.toml.
  listenAddressError =
    a:
    if isIP a then
      null
    else if a == "" then
      "is empty: write \"::\" for every address (IPv4's too) or \"0.0.0.0\" for IPv4's"
    else if substring 0 1 a == "/" then
      "${builtins.toJSON a} is a path: set listenSocket to it for a unix socket, as listen.socket in bitpoll.toml"
    else
      "${builtins.toJSON a} is not an IP address, and systemd's ListenStream= does not resolve names: write it like \"127.0.0.1\" or \"::1\", or set listenSocket for a unix socket";

  # Why listenSocket cannot go into ListenStream=, or null when it can:
  # unitgen's rules for listen.socket.
  listenSocketError =
    p:
    if substring 0 1 p != "/" then
      "${builtins.toJSON p} is not an absolute path; write it like \"/run/bitpoll/bitpoll.sock\""
    else if !(unitPath p) then
      "${builtins.toJSON p} is not a plain absolute path; use letters, digits and . _ + @ / - only"
    else if !(isClean p) then
      "${builtins.toJSON p} is not clean: no empty, \".\" or \"..\" parts and no trailing slash"
    else if stringLength p > 107 then
      "${builtins.toJSON p} is longer than the 107 bytes a unix socket path may have"
    else
      null;

  # Why a database URL is refused, or null: the Go config's rules for
  # database.url (checkDatabaseURL), by the parts Go's url.Parse finds.
  databaseURLError =
    u:
    let
      # scheme, user, :password, host, :port, path, query
      pg = match "postgres(ql)?://(([^:@/?#]*)(:[^@/?#]*)?@)?([[][0-9a-fA-F:.]+[]]|[^:@/?#[]*)(:([^/?#]*))?(/([^?#]*))?([?]([^#]*))?(#.*)?" u;
      part = i: elemAt pg i;
      query = if part 10 == null then "" else part 10;
      hostParam = match "(.*&)?host=([^&]+).*" query;
      example = "write it like \"postgresql://bitpoll@localhost/bitpoll\"";
    in
    if pg != null then
      if part 3 != null then
        "contains a password; remove it, put it in a file and set database.passwordFile"
      else if part 8 == null || match "/*" (part 8) != null then
        "${builtins.toJSON u} names no database; ${example}"
      else if part 4 == "" && hostParam == null then
        "${builtins.toJSON u} names no host; give a host name or ?host=/run/postgresql for the local socket"
      else if part 6 != null && part 6 != "" && !(portOK (part 6)) then
        "${builtins.toJSON u} has port ${builtins.toJSON (part 6)}; want 1 to 65535"
      else
        null
    else if match "sqlite:.*" u != null then
      if match "sqlite:////.*" u == null then
        "${builtins.toJSON u} is not an absolute SQLite URL; write sqlite:////var/lib/bitpoll/db.sqlite3 (four slashes), or leave database.url null for that default"
      else if match "sqlite:///${stateDir}/.*" u == null then
        "${builtins.toJSON u} is outside ${stateDir}, the only place the service may write; keep the database there"
      else
        null
    else if match "[a-zA-Z][a-zA-Z0-9+.-]*:.*" u != null then
      "${builtins.toJSON u} has scheme ${builtins.toJSON (head (match "([^:]*):.*" u))}; want postgresql:// or sqlite:////"
    else
      "${builtins.toJSON u} is not a URL; ${example}";

  # The socket directory a PostgreSQL URL's host parameter names, or null:
  # the units' empty root must show it (Go's databaseSocketDir).
  databaseSocketDir =
    u:
    let
      pg = match "postgres(ql)?://[^?#]*[?]([^#]*).*" u;
      host = if pg == null then null else match "(.*&)?host=([^&]*).*" (elemAt pg 1);
      dir = if host == null then "" else replaceStrings [ "%2F" "%2f" ] [ "/" "/" ] (elemAt host 1);
    in
    if substring 0 1 dir == "/" then dir else null;

  # What in a configuration needs the network, by option, as the Go
  # config's NetworkNeeds says it: mail (settings.email, unless its backend
  # is "console"; Django's SMTP default is localhost port 25), a database
  # over TCP (SQLite and PostgreSQL over a unix socket need none), and the
  # outbound allow-list. Empty means the units get PrivateNetwork=yes.
  networkNeeds =
    { settings, outboundAllow }:
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
    ];

  # Why an outboundAllow entry cannot go into IPAddressAllow=, or null;
  # "any" stands for itself (see outboundListError).
  outboundError =
    e:
    if e == "any" || isIP e || isPrefix e && !(isEverything e) then
      null
    else if isPrefix e then
      "${builtins.toJSON e} allows every address: write [ \"any\" ] to open outbound traffic on purpose"
    else
      "${builtins.toJSON e} is not an IP address or prefix (like \"192.0.2.25\" or \"2001:db8::/32\"); systemd's IPAddressAllow= does not resolve names";

  # Why the list as a whole is refused, or null: "any" alone.
  outboundListError =
    l:
    if builtins.elem "any" l && length l > 1 then
      "\"any\" opens outbound to everything, so the other entries mean nothing; use [ \"any\" ] alone or addresses only"
    else
      null;
}
